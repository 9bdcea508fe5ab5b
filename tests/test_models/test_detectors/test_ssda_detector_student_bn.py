"""The student's BatchNorm statistics (``semi_train_cfg.student_bn_stats``)
of SSDADetector."""
import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from tests.test_models.utils import (boost_scores, build_ssda,
                                     float_buffers, four_stream_batch,
                                     group_norm_detector_cfg)


def target_only_stats(model, inputs, samples):
    """The student's running statistics after one train-mode forward of a
    copy of it on the target-real batch alone."""
    reference = copy.deepcopy(model.student)
    reference.train()
    with torch.no_grad():
        reference._forward(inputs['target_real'], samples['target_real'])
    return float_buffers(reference)


def assert_stats_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for key in actual:
        torch.testing.assert_close(actual[key], expected[key], msg=key)


@pytest.mark.parametrize('distilling', [True, False])
def test_student_keeps_target_bn_stats(distilling):
    model = build_ssda(semi_train_cfg=dict(student_bn_stats='target'))
    assert model.student_keeps_target_bn_stats
    boost_scores(model.teacher)
    model.distill_active = distilling
    inputs, samples = four_stream_batch()
    before = float_buffers(model.student)
    expected = target_only_stats(model, inputs, samples)
    losses = model.loss(inputs, copy.deepcopy(samples))
    after = float_buffers(model.student)
    assert any(not torch.equal(after[k], before[k]) for k in after)
    assert_stats_equal(after, expected)
    assert any(k.startswith('distill.') for k in losses) == distilling
    assert all(m.track_running_stats for m in model.student.modules()
               if isinstance(m, _BatchNorm))


def test_student_bn_stats_all_by_default():
    model = build_ssda()
    assert not model.student_keeps_target_bn_stats
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    model.loss(inputs, copy.deepcopy(samples))
    # the source batches moved the statistics too
    assert any(
        not torch.equal(v, target_only_stats(model, inputs, samples)[k])
        for k, v in float_buffers(model.student).items())


def test_student_target_bn_stats_keep_the_losses():
    inputs, samples = four_stream_batch()
    models = {}
    for value in ('all', 'target'):
        model = build_ssda(semi_train_cfg=dict(student_bn_stats=value))
        boost_scores(model.teacher)
        models[value] = model
    models['target'].load_state_dict(models['all'].state_dict())
    losses = {
        value: model.loss(inputs, copy.deepcopy(samples))
        for value, model in models.items()
    }
    assert losses['all'].keys() == losses['target'].keys()
    for key, value in losses['all'].items():
        if 'loss' in key:
            torch.testing.assert_close(losses['target'][key], value, msg=key)


def test_student_bn_stats_refused():
    with pytest.raises(ValueError, match='student_bn_stats must be one of'):
        build_ssda(semi_train_cfg=dict(student_bn_stats='source'))
    with pytest.raises(ValueError, match='needs semi_train_cfg.fused_student'):
        build_ssda(
            semi_train_cfg=dict(
                student_bn_stats='target', fused_student_forward=True))
    detector = group_norm_detector_cfg()
    with pytest.raises(ValueError, match="student_bn_stats='target' needs "
                       'BatchNorm layers; YOLODetector with YOLOv5Head'):
        build_ssda(
            detector=detector,
            semi_train_cfg=dict(student_bn_stats='target'))
