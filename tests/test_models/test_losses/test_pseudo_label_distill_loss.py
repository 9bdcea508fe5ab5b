import pytest
import torch

from mmssda.registry import MODELS


def head_losses():
    return dict(
        loss_cls=torch.tensor([2.0]),
        loss_obj=torch.tensor([4.0]),
        loss_bbox=torch.tensor([8.0]))


def test_weights_every_term():
    loss = MODELS.build(dict(type='PseudoLabelDistillLoss'))
    out = loss(head_losses())
    assert set(out) == {'loss_cls', 'loss_obj', 'loss_bbox'}
    assert out['loss_cls'].item() == pytest.approx(0.005 * 2)
    assert out['loss_bbox'].item() == pytest.approx(0.005 * 8)


def test_term_weights():
    loss = MODELS.build(
        dict(
            type='PseudoLabelDistillLoss',
            loss_weight=0.5,
            term_weights=dict(loss_bbox=0.)))
    out = loss(head_losses())
    assert out['loss_bbox'].item() == 0
    assert out['loss_obj'].item() == pytest.approx(2.0)
    with pytest.raises(KeyError, match='loss_dfl'):
        MODELS.build(
            dict(type='PseudoLabelDistillLoss',
                 term_weights=dict(loss_dfl=0.)))(head_losses())
