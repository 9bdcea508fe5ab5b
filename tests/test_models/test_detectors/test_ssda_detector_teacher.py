"""The teacher-side options of SSDADetector: the teacher's BatchNorm
statistics (``teacher_bn_stats``) and the distillation-weight warmup
(``distill_warmup_iters``)."""
import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from tests.test_models.utils import (boost_scores, build_ssda,
                                     float_buffers, four_stream_batch,
                                     group_norm_detector_cfg)


def test_teacher_keeps_target_bn_stats():
    model = build_ssda(semi_train_cfg=dict(teacher_bn_stats='target'))
    assert model.teacher_keeps_bn_stats
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    # what the teacher's BatchNorm layers record from the target-fake batch
    reference = copy.deepcopy(model.teacher)
    for module in reference.modules():
        if isinstance(module, _BatchNorm):
            module.train()
    with torch.no_grad():
        reference.extract_feat(inputs['target_fake'])
    before = float_buffers(model.teacher)
    student_before = float_buffers(model.student)
    model.loss(inputs, copy.deepcopy(samples))
    after = float_buffers(model.teacher)
    expected = float_buffers(reference)
    assert any(not torch.equal(after[k], before[k]) for k in after)
    for key in after:
        torch.testing.assert_close(after[key], expected[key], msg=key)
    # the student's statistics come from its own batches only
    assert any(not torch.equal(v, student_before[k])
               for k, v in float_buffers(model.student).items())
    # the teacher is back in eval mode
    assert not any(m.training for m in model.teacher.modules())


def test_teacher_bn_stats_from_student_by_default():
    model = build_ssda()
    assert not model.teacher_keeps_bn_stats
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    before = float_buffers(model.teacher)
    model.loss(inputs, copy.deepcopy(samples))
    for key, value in float_buffers(model.teacher).items():
        assert torch.equal(value, before[key]), key


def test_teacher_bn_stats_refused():
    with pytest.raises(ValueError, match='teacher_bn_stats must be one of'):
        build_ssda(semi_train_cfg=dict(teacher_bn_stats='source'))
    detector = group_norm_detector_cfg()
    with pytest.raises(ValueError, match="teacher_bn_stats='target' needs "
                       'BatchNorm layers; YOLODetector with YOLOv5Head'):
        build_ssda(
            detector=detector,
            semi_train_cfg=dict(teacher_bn_stats='target'))


def distill_losses(model, inputs, samples):
    losses = model.loss(inputs, copy.deepcopy(samples))
    return {k: v for k, v in losses.items() if k.startswith('distill.')}


def test_distill_warmup_ramps_the_distillation_losses():
    inputs, samples = four_stream_batch()
    full = build_ssda()
    boost_scores(full.teacher)
    reference = distill_losses(full, inputs, samples)
    model = build_ssda(semi_train_cfg=dict(distill_warmup_iters=4))
    boost_scores(model.teacher)
    for steps, scale in ((0, 0.25), (1, 0.5), (3, 1.), (10, 1.)):
        model.distill_steps = steps
        assert model.distill_weight_scale == scale
        losses = distill_losses(model, inputs, samples)
        assert losses.keys() == reference.keys()
        for key, value in losses.items():
            expected = reference[key] * scale if 'loss' in key \
                else reference[key]
            torch.testing.assert_close(value, expected, msg=key)
    assert any('loss' in k and v.sum() > 0 for k, v in reference.items())
    with pytest.raises(ValueError, match='distill_warmup_iters must be >= 0'):
        build_ssda(semi_train_cfg=dict(distill_warmup_iters=-1))


def test_distill_warmup_scales_per_level_losses(monkeypatch):
    # two-stage detectors give some losses as one tensor per level
    model = build_ssda(semi_train_cfg=dict(distill_warmup_iters=4))
    per_level = [torch.tensor(2.), torch.tensor(4.)]
    monkeypatch.setattr(
        model, 'loss_by_distillation', lambda *args, **kwargs: {
            'distill.loss_rpn_cls': list(per_level),
            'distill.num_pseudo': torch.tensor(3.)
        })
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, copy.deepcopy(samples))
    assert [x.item() for x in losses['distill.loss_rpn_cls']] == [0.5, 1.]
    assert losses['distill.num_pseudo'].item() == 3.
