"""``semi_train_cfg.fused_student_forward``: one student pass, same losses.

The fused pass concatenates the student's streams; it may only change the
BatchNorm statistics (joint instead of per stream).
"""
import copy

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from tests.test_models.utils import (boost_scores, build_ssda,
                                     four_stream_batch, total)


def build_pair(**kwargs):
    """The same model twice: per-stream and fused student forward."""
    models = []
    for fused in (False, True):
        model = build_ssda(
            seed=0,
            semi_train_cfg=dict(fused_student_forward=fused),
            **kwargs)
        boost_scores(model.teacher)
        models.append(model)
    models[1].load_state_dict(models[0].state_dict())
    return models


def bn_eval(model):
    for m in model.student.modules():
        if isinstance(m, _BatchNorm):
            m.eval()


def losses_and_grads(model, inputs, samples):
    losses = model.loss(inputs, copy.deepcopy(samples))
    model.student.zero_grad(set_to_none=True)
    total(losses).backward()
    grads = {
        name: p.grad.clone()
        for name, p in model.student.named_parameters()
        if p.grad is not None
    }
    return losses, grads


def assert_losses_close(a, b, **tol):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key, **tol)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(distill_loss=None, consistency_loss=None,
         semi_train_cfg=dict(supervised_streams=['source_real']))
])
def test_fused_matches_per_stream_with_bn_in_eval_mode(kwargs):
    kwargs = copy.deepcopy(kwargs)
    streams_cfg = kwargs.pop('semi_train_cfg', {})
    models = []
    for fused in (False, True):
        model = build_ssda(
            seed=0,
            semi_train_cfg=dict(streams_cfg, fused_student_forward=fused),
            **kwargs)
        boost_scores(model.teacher)
        bn_eval(model)
        models.append(model)
    per_stream, fused = models
    inputs, samples = four_stream_batch(batch=2)
    l_ps, g_ps = losses_and_grads(per_stream, inputs, samples)
    l_f, g_f = losses_and_grads(fused, inputs, samples)
    if per_stream.distill_loss is not None:
        assert l_ps['distill.num_pseudo'] > 0  # the distill term is live
    assert_losses_close(l_ps, l_f, rtol=1e-4, atol=1e-5)
    assert g_ps.keys() == g_f.keys() and g_ps
    for name in g_ps:
        torch.testing.assert_close(
            g_ps[name], g_f[name], rtol=1e-3, atol=1e-5, msg=name)


def test_fused_differs_only_through_bn_statistics():
    per_stream, fused = build_pair()
    inputs, samples = four_stream_batch(batch=2)

    # Different images per stream: train-mode BN normalises with other
    # statistics, so the losses differ ...
    l_ps = per_stream.loss(inputs, copy.deepcopy(samples))
    l_f = fused.loss(inputs, copy.deepcopy(samples))
    assert not torch.allclose(l_ps['source_real.loss_obj'],
                              l_f['source_real.loss_obj'])
    # ... and the running statistics are updated once, not per stream.
    bn_ps = next(m for m in per_stream.student.modules()
                 if isinstance(m, _BatchNorm))
    bn_f = next(m for m in fused.student.modules()
                if isinstance(m, _BatchNorm))
    assert int(bn_ps.num_batches_tracked) == 3
    assert int(bn_f.num_batches_tracked) == 1

    # The same images in every stream: joint and per-stream batch
    # statistics coincide, and so do all the losses, in train mode.
    per_stream, fused = build_pair()
    same = {k: inputs['source_real'].clone() for k in inputs}
    l_ps = per_stream.loss(same, copy.deepcopy(samples))
    l_f = fused.loss(same, copy.deepcopy(samples))
    assert_losses_close(l_ps, l_f, rtol=1e-4, atol=1e-5)


def test_fused_needs_one_image_size():
    model = build_ssda(semi_train_cfg=dict(fused_student_forward=True))
    inputs, samples = four_stream_batch(batch=2)
    inputs['source_fake'] = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match='one size'):
        model.loss(inputs, samples)


def test_channels_last_same_losses():
    models = []
    for channels_last in (False, True):
        model = build_ssda(seed=0, channels_last=channels_last)
        boost_scores(model.teacher)
        models.append(model)
    models[1].load_state_dict(models[0].state_dict())
    conv = next(m for m in models[1].student.modules()
                if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    inputs, samples = four_stream_batch(batch=2)
    assert_losses_close(
        models[0].loss(inputs, copy.deepcopy(samples)),
        models[1].loss(inputs, copy.deepcopy(samples)),
        rtol=1e-4,
        atol=1e-5)
