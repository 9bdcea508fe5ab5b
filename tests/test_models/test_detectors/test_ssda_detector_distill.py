"""SSDADetector's distillation options: logged teacher statistics and
``semi_train_cfg.empty_pseudo_policy``."""
import copy

import numpy as np
import pytest
import torch

from tests.test_models.utils import (boost_scores, build_ssda, data_sample,
                                     four_stream_batch, freeze_batch_norm,
                                     total)

PSEUDO_BOX = [[4., 6., 30., 28.]]


def pseudo_sample(bboxes=None, labels=None, scores=None):
    sample = data_sample(bboxes, labels)
    sample.gt_instances.scores = torch.tensor(
        scores if scores is not None else [0.9] * len(sample.gt_instances))
    return sample


def hand_top_scores(teacher, images):
    """Each image's highest sigmoid(obj) * sigmoid(cls), level by level."""
    teacher.eval()
    with torch.no_grad():
        cls_scores, _, objectnesses = teacher._forward(images)
    tops = []
    for cls, obj in zip(cls_scores, objectnesses):
        n, a, h, w = obj.shape
        score = obj.sigmoid()[:, :, None] * cls.view(n, a, -1, h,
                                                     w).sigmoid()
        tops.append(score.flatten(1).max(1).values)
    return torch.stack(tops, 1).max(1).values


def test_statistics_by_hand():
    model = build_ssda(
        semi_train_cfg=dict(score_quantiles=(0.25, 0.5, 0.999)))
    pseudo = [
        pseudo_sample([[0., 0., 9., 9.], [1., 1., 9., 9.], [2., 2., 9., 9.]],
                      [0, 1, 1]),
        pseudo_sample(),
        pseudo_sample([[0., 0., 9., 9.]], [1]),
        pseudo_sample(),
    ]
    top = torch.tensor([0.9, 0.1, 0.4, 0.3])
    stats = model.pseudo_label_statistics(
        pseudo, [data_sample() for _ in pseudo],
        dict(teacher_top_scores=top))
    assert set(stats) == {
        'distill.num_pseudo', 'distill.frac_with_pseudo',
        'distill.num_pseudo_0', 'distill.num_pseudo_1',
        'distill.teacher_score_p25', 'distill.teacher_score_p50',
        'distill.teacher_score_p99.9'
    }
    assert all(v.device.type == 'cpu' and v.dim() == 0
               for v in stats.values())
    assert stats['distill.num_pseudo'].item() == pytest.approx(4 / 4)
    assert stats['distill.frac_with_pseudo'].item() == pytest.approx(2 / 4)
    assert stats['distill.num_pseudo_0'].item() == pytest.approx(1 / 4)
    assert stats['distill.num_pseudo_1'].item() == pytest.approx(3 / 4)
    for q, key in ((25, 'p25'), (50, 'p50'), (99.9, 'p99.9')):
        assert stats[f'distill.teacher_score_{key}'].item() == pytest.approx(
            np.percentile(top.numpy(), q), abs=1e-6)


def test_class_names_in_keys():
    model = build_ssda(
        semi_train_cfg=dict(class_names=['big car', 'glossy thing']))
    pseudo = [pseudo_sample(PSEUDO_BOX, [0])]
    stats = model.pseudo_label_statistics(pseudo, [data_sample()])
    # a key containing 'loss' would be summed into the loss by MMEngine
    assert {'distill.num_pseudo_big_car', 'distill.num_pseudo_1'} <= set(stats)
    assert not any('loss' in k for k in stats)

    model = build_ssda()
    model.dataset_meta = dict(classes=('square', 'disc'))
    stats = model.pseudo_label_statistics(pseudo, [data_sample()])
    assert stats['distill.num_pseudo_square'].item() == 1
    assert stats['distill.num_pseudo_disc'].item() == 0

    model = build_ssda(semi_train_cfg=dict(class_names=['only_one']))
    with pytest.raises(ValueError, match='class_names'):
        model.pseudo_label_statistics(pseudo, [data_sample()])
    with pytest.raises(ValueError, match='score_quantiles'):
        build_ssda(semi_train_cfg=dict(score_quantiles=(50, )))


def test_teacher_scores_are_taken_before_the_threshold():
    model = build_ssda()
    boost_scores(model.teacher, obj=-3., cls=(1., -1.))  # score ~ 0.035
    inputs, samples = four_stream_batch(batch=4)
    losses = model.loss(inputs, samples)
    assert losses['distill.num_pseudo'].item() == 0
    top = hand_top_scores(model.teacher, inputs['target_fake'])
    assert 0 < top.max() < 0.5
    for q in (50, 90, 99):
        assert losses[f'distill.teacher_score_p{q}'].item() == pytest.approx(
            np.percentile(top.numpy(), q), rel=1e-5)


def student_samples(pseudo):
    samples = copy.deepcopy(pseudo)
    for s in samples:
        del s.gt_instances.scores
    return samples


def patch_pseudo_labels(model, pseudo):
    """Make the teacher return ``pseudo`` (the hard-label path needs no
    teacher outputs)."""
    model.get_pseudo_instances = lambda inputs, samples: (
        copy.deepcopy(pseudo), dict())


def distill_losses(losses):
    return {
        k[len('distill.'):]: v
        for k, v in losses.items() if k.startswith('distill.loss')
    }


@pytest.mark.parametrize('fused', [False, True])
def test_ignore_trains_only_on_images_with_pseudo_labels(fused):
    model = build_ssda(
        semi_train_cfg=dict(
            empty_pseudo_policy='ignore', fused_student_forward=fused))
    if fused:
        # fused BatchNorm sees all streams; with running statistics the
        # fused pass computes what the per-stream one does
        freeze_batch_norm(model.student)
    pseudo = [pseudo_sample(), pseudo_sample(PSEUDO_BOX, [0])]
    patch_pseudo_labels(model, pseudo)
    inputs, samples = four_stream_batch()
    losses = distill_losses(model.loss(inputs, samples))
    expected = model.student.loss(inputs['target_real'][1:],
                                  student_samples(pseudo[1:]))
    assert set(losses) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], 0.005 * value)
    # 'background' keeps the empty image: a different objectness term
    model.semi_train_cfg.empty_pseudo_policy = 'background'
    background = distill_losses(model.loss(inputs, samples))
    assert not torch.allclose(background['loss_obj'], losses['loss_obj'])
    torch.testing.assert_close(
        background['loss_obj'], 0.005 * model.student.loss(
            inputs['target_real'], student_samples(pseudo))['loss_obj'])


def test_ignore_without_any_pseudo_label_gives_zeros_with_graph():
    model = build_ssda(semi_train_cfg=dict(empty_pseudo_policy='ignore'))
    boost_scores(model.teacher, obj=-8.)  # teacher finds nothing
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, samples)
    distill = distill_losses(losses)
    assert set(distill) == {'loss_cls', 'loss_obj', 'loss_bbox'}
    for value in distill.values():
        assert value.item() == 0 and value.grad_fn is not None
    total(losses).backward()
    # 'background' trains the objectness towards "no object" instead
    model.semi_train_cfg.empty_pseudo_policy = 'background'
    assert distill_losses(model.loss(inputs, samples))['loss_obj'] > 0


def test_empty_pseudo_policy_is_checked():
    with pytest.raises(ValueError, match='empty_pseudo_policy'):
        build_ssda(semi_train_cfg=dict(empty_pseudo_policy='drop'))
