"""mmssda.apis.train_benchmark: the floor's operation count and the
machine's matrix-product rate."""
import torch
from torch import nn

from mmssda.apis import train_benchmark as bm


class ConvLossModel(nn.Module):
    """``loss`` of one convolution, with a pass-through preprocessor."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.data_preprocessor = lambda batch, training: batch

    def loss(self, inputs, data_samples):
        return dict(loss_conv=self.conv(inputs).square().mean(),
                    acc=torch.tensor(1.0))


def test_floor_flops_counts_forward_and_backward():
    model = ConvLossModel()
    batch = dict(inputs=torch.randn(2, 3, 8, 8), data_samples=None)
    # forward: 2 * N * C_out * H * W * C_in * k * k; backward: the weight
    # gradient only (the images need no gradient), as many again
    forward = 2 * 2 * 4 * 8 * 8 * 3 * 3 * 3
    assert bm.floor_flops(model, batch) == 2 * forward
    # the step leaves no gradient behind, as floor_step does
    assert model.conv.weight.grad is None


def test_matmul_gflops_is_the_median_product_rate(monkeypatch):
    # each timed product "takes" 0.5 s, one of them 10 s (the median
    # ignores it)
    steps = iter([0.5] * 4 + [10.0] + [0.5] * 20)
    clock = dict(now=0.0, start=True)

    def perf_counter():
        if not clock['start']:
            clock['now'] += next(steps)
        clock['start'] = not clock['start']
        return clock['now']

    monkeypatch.setattr(bm.time, 'perf_counter', perf_counter)
    rate = bm.matmul_gflops(size=128, repeats=5)
    assert rate == 2 * 128**3 / 0.5 / 1e9
