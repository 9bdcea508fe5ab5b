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


@pytest.mark.parametrize('world_size', [1, 2, 8])
def test_consistency_matches_the_original_at_any_world_size(
        monkeypatch, world_size):
    # SSDA-YOLO on W GPUs: W * (... + alpha * (l_sr - l_sf) ** 2) with the
    # per-process losses l; mmyolo's losses are already W * l
    monkeypatch.setattr('mmssda.models.losses.consistency_loss.'
                        'get_world_size', lambda: world_size)
    loss = MODELS.build(dict(type='ConsistencyLoss', loss_weight=2.0))
    l_sr, l_sf = torch.tensor([3.0]), torch.tensor([1.5])
    ours = loss(world_size * l_sr, world_size * l_sf)
    original = world_size * 2.0 * (l_sr - l_sf).pow(2).sum()
    assert ours.item() == pytest.approx(original.item())
