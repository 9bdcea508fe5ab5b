import torch
from mmyolo.models.layers import ExpMomentumEMA

from mmssda.models.layers import ForeachExpMomentumEMA
from tests.test_models.utils import build_ssda


def test_foreach_ema_equals_exp_momentum_ema():
    student = build_ssda().student
    reference = ExpMomentumEMA(
        student, momentum=0.01, gamma=20, update_buffers=True)
    fused = ForeachExpMomentumEMA(
        student, momentum=0.01, gamma=20, update_buffers=True)
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        reference.update_parameters(student)
        fused.update_parameters(student)
        with torch.no_grad():
            for tensor in student.state_dict().values():
                if tensor.dtype.is_floating_point:
                    tensor.add_(torch.randn(tensor.shape, generator=gen))
    expected, actual = reference.state_dict(), fused.state_dict()
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
