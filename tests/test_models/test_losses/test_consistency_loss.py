import pytest
import torch

from mmssda.registry import MODELS


def test_consistency_loss():
    loss = MODELS.build(dict(type='ConsistencyLoss'))
    real = torch.tensor([3.0], requires_grad=True)
    fake = torch.tensor([1.5], requires_grad=True)
    out = loss(real, fake)
    assert out.item() == pytest.approx(2.0 * 1.5**2)
    out.backward()
    assert real.grad.item() == pytest.approx(2 * 2.0 * 1.5)
    assert fake.grad.item() == pytest.approx(-2 * 2.0 * 1.5)
    assert MODELS.build(dict(type='ConsistencyLoss', loss_weight=0.5))(
        real, fake).item() == pytest.approx(0.5 * 1.5**2)


def test_consistency_loss_rejects_bad_input():
    with pytest.raises(ValueError):
        MODELS.build(dict(type='ConsistencyLoss', loss_weight=-1))
    with pytest.raises(ValueError):
        MODELS.build(dict(type='ConsistencyLoss'))(
            torch.ones(2), torch.ones(2))
