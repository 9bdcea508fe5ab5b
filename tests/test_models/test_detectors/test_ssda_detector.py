import copy

import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict

from mmssda.registry import MODELS
from tests.test_models.utils import (IMG_SIZE, boost_scores, build_ssda,
                                     data_sample, four_stream_batch,
                                     tiny_detector_cfg, total, yolov8_tiny_cfg)

#: The statistics logged on a batch without analysis labels (2 classes,
#: no class names, default quantiles).
STATS_KEYS = {
    'distill.num_pseudo', 'distill.frac_with_pseudo', 'distill.num_pseudo_0',
    'distill.num_pseudo_1', 'distill.teacher_score_p50',
    'distill.teacher_score_p90', 'distill.teacher_score_p99'
}


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def perturb(module, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


def test_teacher_equals_student_and_is_frozen():
    model = build_ssda()
    assert_same_state(model.teacher, model.student)
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert all(p.requires_grad for p in model.student.parameters())
    model.train()
    assert model.student.training and not model.teacher.training
    perturb(model.student)
    model.init_weights()
    assert_same_state(model.teacher, model.student)


def test_loss_terms_follow_formula():
    model = build_ssda()
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, copy.deepcopy(samples))

    assert set(losses) == {
        'source_real.loss_cls', 'source_real.loss_obj',
        'source_real.loss_bbox', 'source_fake.loss_cls',
        'source_fake.loss_obj', 'source_fake.loss_bbox',
        'distill.loss_cls', 'distill.loss_obj', 'distill.loss_bbox',
        'consistency.loss', 'consistency.real_weight',
        'consistency.fake_weight'
    } | STATS_KEYS
    # By hand, from the same forward passes of the student.
    student = model.student
    l_sr = total(student.loss(inputs['source_real'], samples['source_real']))
    l_sf = total(student.loss(inputs['source_fake'], samples['source_fake']))
    pseudo, _ = model.get_pseudo_instances(inputs['target_fake'],
                                           samples['target_fake'])
    num_pseudo = [len(p.gt_instances) for p in pseudo]
    assert all(0 < n <= 20 for n in num_pseudo)
    for p in pseudo:
        assert (p.gt_instances.scores > 0.5).all()
    student_samples = [data_sample() for _ in pseudo]
    for s, p in zip(student_samples, pseudo):
        s.gt_instances = copy.deepcopy(p.gt_instances)
        del s.gt_instances.scores
    l_d = total(student.loss(inputs['target_real'], student_samples))

    def branch(prefix):
        return sum(v.sum() for k, v in losses.items()
                   if k.startswith(prefix) and 'loss' in k)

    torch.testing.assert_close(branch('source_real.'), l_sr)
    torch.testing.assert_close(branch('source_fake.'), l_sf)
    torch.testing.assert_close(branch('distill.'), 0.005 * l_d)
    torch.testing.assert_close(losses['consistency.loss'],
                               2.0 * (l_sr - l_sf)**2)
    torch.testing.assert_close(
        total(losses), l_sr + l_sf + 0.005 * l_d + 2.0 * (l_sr - l_sf)**2)
    assert losses['distill.num_pseudo'].item() == pytest.approx(
        sum(num_pseudo) / len(num_pseudo))


def test_weights_come_from_config():
    model = build_ssda(
        distill_loss=dict(type='PseudoLabelDistillLoss', loss_weight=0.5),
        consistency_loss=dict(type='ConsistencyLoss', loss_weight=0.25))
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, copy.deepcopy(samples))
    ref = build_ssda()
    boost_scores(ref.teacher)
    ref_losses = ref.loss(inputs, copy.deepcopy(samples))
    for key in ('distill.loss_cls', 'distill.loss_obj', 'distill.loss_bbox'):
        torch.testing.assert_close(losses[key], ref_losses[key] * 100)
    torch.testing.assert_close(losses['consistency.loss'],
                               ref_losses['consistency.loss'] / 8)


def test_teacher_gets_no_gradient():
    model = build_ssda()
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    total(model.loss(inputs, samples)).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.parameters())


def test_zero_pseudo_labels_give_background_loss_only():
    model = build_ssda()
    boost_scores(model.teacher, obj=-8.)  # teacher finds nothing
    inputs, samples = four_stream_batch()
    seen = []
    student_loss = model.student.loss

    def spy(batch_inputs, batch_data_samples):
        seen.append(batch_data_samples)
        return student_loss(batch_inputs, batch_data_samples)

    model.student.loss = spy
    losses = model.loss(inputs, samples)
    assert losses['distill.num_pseudo'].item() == 0
    distill_samples = seen[-1]  # the target_real call comes last
    assert all(len(s.gt_instances) == 0 for s in distill_samples)
    assert torch.isfinite(total(losses))
    assert losses['distill.loss_cls'].item() == 0
    assert losses['distill.loss_bbox'].item() == 0
    assert losses['distill.loss_obj'].item() > 0
    total(losses).backward()


def test_analysis_labels_give_statistics_but_not_loss():
    gt = [([[4., 4., 20., 20.], [40., 40., 60., 60.]], [0, 1]),
          ([[10., 10., 30., 30.]], [0])]
    model = build_ssda()
    boost_scores(model.teacher)
    inputs, plain = four_stream_batch()
    _, labelled = four_stream_batch(target_labels=gt)
    without = model.loss(inputs, plain)
    with_labels = model.loss(inputs, labelled)
    assert 'distill.pseudo_recall' in with_labels
    assert 'distill.pseudo_precision' in with_labels
    assert 'distill.pseudo_recall' not in without
    for key, value in without.items():
        torch.testing.assert_close(with_labels[key], value)


def test_pseudo_label_statistics_by_hand():
    model = build_ssda()
    pseudo = data_sample(
        [[0., 0., 10., 10.], [0., 0., 10., 10.], [20., 20., 30., 30.],
         [40., 40., 50., 50.]], [0, 0, 1, 0])
    pseudo.gt_instances.scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    gt = data_sample([[0., 0., 10., 10.], [20., 20., 30., 30.],
                      [50., 50., 60., 60.]], [0, 0, 1])
    stats = model.pseudo_label_statistics([pseudo], [gt])
    # box 0 matches gt 0; box 1 duplicates it; box 2 has the wrong class;
    # box 3 overlaps nothing.
    assert stats['distill.num_pseudo'].item() == 4
    assert stats['distill.pseudo_precision'].item() == pytest.approx(1 / 4)
    assert stats['distill.pseudo_recall'].item() == pytest.approx(1 / 3)


def test_pseudo_labels_use_their_own_cfg():
    model = build_ssda(
        semi_train_cfg=dict(pseudo_label_cfg=dict(max_per_img=3)))
    assert model.semi_train_cfg.pseudo_label_cfg.score_thr == 0.5
    assert model.student.bbox_head.test_cfg.score_thr == 0.001
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    pseudo, _ = model.get_pseudo_instances(inputs['target_fake'],
                                           samples['target_fake'])
    assert [len(p.gt_instances) for p in pseudo] == [3, 3]
    for p in pseudo:
        bboxes = p.gt_instances.bboxes
        assert (bboxes >= 0).all() and (bboxes <= IMG_SIZE).all()


def test_source_only_switch_skips_teacher():
    model = build_ssda(
        distill_loss=None,
        consistency_loss=None,
        semi_train_cfg=dict(supervised_streams=['source_real']))

    def fail(*args, **kwargs):
        raise AssertionError('the teacher must not run')

    model.teacher.extract_feat = fail
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, samples)
    assert set(losses) == {
        'source_real.loss_cls', 'source_real.loss_obj',
        'source_real.loss_bbox'
    }


def test_burn_in_flag_skips_distillation():
    model = build_ssda()
    model.distill_active = False
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, samples)
    assert not any(k.startswith('distill.') for k in losses)
    assert 'consistency.loss' in losses


def test_consistency_needs_both_source_streams():
    with pytest.raises(ValueError, match='source_fake'):
        build_ssda(semi_train_cfg=dict(supervised_streams=['source_real']))
    with pytest.raises(ValueError, match='Unknown streams'):
        build_ssda(
            consistency_loss=None,
            semi_train_cfg=dict(supervised_streams=['sup']))


def test_plain_checkpoint_loads_into_student_and_teacher():
    torch.manual_seed(3)
    plain = MODELS.build(tiny_detector_cfg())
    model = build_ssda(seed=4)
    load_state_dict(model, copy.deepcopy(plain.state_dict()), strict=True)
    assert_same_state(model.student, plain)
    assert_same_state(model.teacher, plain)
    model2 = build_ssda(seed=5)
    model2.load_state_dict(copy.deepcopy(plain.state_dict()))
    assert_same_state(model2.student, plain)
    assert_same_state(model2.teacher, plain)


def test_predict_follows_predict_on():
    model = build_ssda()
    boost_scores(model.teacher)
    model.eval()
    inputs, samples = four_stream_batch()
    x = inputs['target_real']
    for name in ('teacher', 'student'):
        model.semi_test_cfg.predict_on = name
        got = model.predict(x, copy.deepcopy(samples['target_real']))
        ref = getattr(model, name).predict(
            x, copy.deepcopy(samples['target_real']))
        for g, r in zip(got, ref):
            torch.testing.assert_close(g.pred_instances.bboxes,
                                       r.pred_instances.bboxes)
    model.semi_test_cfg.extract_feat_on = 'teacher'
    torch.testing.assert_close(
        model.extract_feat(x)[0], model.teacher.extract_feat(x)[0])
    model.semi_test_cfg.predict_on = 'both'
    with pytest.raises(ValueError, match='predict_on'):
        model.predict(x, samples['target_real'])


def test_yolov8_detector_by_config():
    detector = yolov8_tiny_cfg()
    model = build_ssda(
        detector=detector,
        semi_train_cfg=dict(pseudo_label_cfg=dict(score_thr=0.001)))
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, samples)
    assert {'source_real.loss_dfl', 'distill.loss_dfl',
            'consistency.loss'} <= set(losses)
    assert losses['distill.num_pseudo'].item() > 0
    assert torch.isfinite(total(losses))
