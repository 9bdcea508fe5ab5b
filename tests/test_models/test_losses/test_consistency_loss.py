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


def grads(loss, real_value, fake_value):
    real = torch.tensor([real_value], requires_grad=True)
    fake = torch.tensor([fake_value], requires_grad=True)
    (real.sum() + fake.sum() + loss(real, fake)).backward()
    return real.grad.item(), fake.grad.item()


def test_stream_weights_are_the_net_gradient_weights():
    # YOLOv8-sized totals 26 apart (YOLOv8-n's on the demo after 20 SSDA
    # iterations with the paper's term): that term pushes the smaller
    # source-real loss up, its net weight is negative
    for cfg in (dict(), dict(pull='worse'), dict(reference_loss=1.1),
                dict(reference_loss=1.1, pull='worse')):
        loss = MODELS.build(dict(type='ConsistencyLoss', **cfg))
        real_grad, fake_grad = grads(loss, 36.0, 62.0)
        weights = loss.stream_weights(torch.tensor([36.0]),
                                      torch.tensor([62.0]))
        assert [w.item() for w in weights] == pytest.approx(
            [real_grad, fake_grad]), cfg
    paper = MODELS.build(dict(type='ConsistencyLoss'))
    assert grads(paper, 36.0, 62.0)[0] == pytest.approx(1 - 2 * 2.0 * 26)


def test_pull_worse_only_pulls_the_larger_loss_down():
    loss = MODELS.build(dict(type='ConsistencyLoss', pull='worse'))
    real_grad, fake_grad = grads(loss, 36.0, 62.0)
    assert real_grad == 1.0  # the better stream is left alone
    assert fake_grad == pytest.approx(1 + 2 * 2.0 * 26)
    real_grad, fake_grad = grads(loss, 5.0, 2.0)
    assert (real_grad, fake_grad) == (pytest.approx(1 + 2 * 2.0 * 3), 1.0)
    # the value is the paper's
    assert loss(torch.tensor([5.0]), torch.tensor([2.0])).item() == \
        pytest.approx(2.0 * 9)


def test_reference_loss_makes_the_weight_independent_of_the_loss_scale():
    loss = MODELS.build(
        dict(type='ConsistencyLoss', reference_loss=1.1))
    # at losses of the reference's size it is the paper's term
    real, fake = torch.tensor([1.0]), torch.tensor([1.2])
    assert loss(real, fake).item() == pytest.approx(
        2.0 * 0.2**2 * 1.1 / 1.1)
    # k times larger losses: the term grows like the detection losses (k),
    # not like the paper's (k ** 2); the net weights stay the same
    k = 30.0
    assert loss(k * real, k * fake).item() == pytest.approx(
        k * loss(real, fake).item())
    assert [w.item() for w in loss.stream_weights(k * real, k * fake)] == \
        pytest.approx([w.item() for w in loss.stream_weights(real, fake)])
    with pytest.raises(ValueError, match='reference_loss'):
        MODELS.build(dict(type='ConsistencyLoss', reference_loss=0))
    with pytest.raises(ValueError, match='pull'):
        MODELS.build(dict(type='ConsistencyLoss', pull='one'))


@pytest.mark.parametrize('world_size', [2, 8])
def test_reference_loss_scales_with_the_world_size_like_the_losses(
        monkeypatch, world_size):
    # mmyolo's losses on W processes are W * l: the term must grow like
    # them (W times the one-process term), as the paper's term does
    loss = MODELS.build(dict(type='ConsistencyLoss', reference_loss=1.1))
    l_sr, l_sf = torch.tensor([1.0]), torch.tensor([1.3])
    one = loss(l_sr, l_sf).item()
    monkeypatch.setattr('mmssda.models.losses.consistency_loss.'
                        'get_world_size', lambda: world_size)
    assert loss(world_size * l_sr, world_size * l_sf).item() == \
        pytest.approx(world_size * one)
