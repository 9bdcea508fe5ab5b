import math
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmssda.engine.hooks import StudentEMAHook
from mmssda.engine.optimizers.non_finite_skip_optim_wrapper import \
    NonFiniteSkipOptimWrapper
from mmssda.registry import OPTIM_WRAPPERS
from tests.training_helpers import TINY_SSDA, make_fog_shapes, omit_config_text

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


def make(accumulative_counts=1):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optim = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    wrapper = NonFiniteSkipOptimWrapper(
        optim, accumulative_counts=accumulative_counts)
    return model, wrapper


def loss_of(model, scale=1.0):
    return model(torch.ones(2, 3)).sum() * scale


def test_registered():
    assert OPTIM_WRAPPERS.get('NonFiniteSkipOptimWrapper') is \
        NonFiniteSkipOptimWrapper


@pytest.mark.parametrize('scale', [math.nan, math.inf])
def test_non_finite_loss_skips_step(scale):
    model, wrapper = make()
    wrapper.update_params(loss_of(model))
    assert not wrapper.skipped_last_step
    before = {k: v.clone() for k, v in model.state_dict().items()}
    momentum = [
        s['momentum_buffer'].clone()
        for s in wrapper.optimizer.state.values()
    ]
    wrapper.update_params(loss_of(model, scale))
    assert wrapper.skipped_last_step and wrapper.num_skipped_steps == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    for s, m in zip(wrapper.optimizer.state.values(), momentum):
        assert torch.equal(s['momentum_buffer'], m)
    # gradients were zeroed: the next good step is a clean step
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    wrapper.update_params(loss_of(model))
    assert not wrapper.skipped_last_step and wrapper.num_skipped_steps == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.equal(model.weight, before['weight'])


def test_finite_loss_with_non_finite_gradient_skips_step():
    model, wrapper = make()
    before = model.weight.detach().clone()
    # d/dx sqrt(x) at 0 is inf, the loss sqrt(0) * 1 is finite
    loss = loss_of(model) + torch.sqrt(model.weight[0, 0] * 0).sum()
    assert torch.isfinite(loss)
    wrapper.update_params(loss)
    assert wrapper.skipped_last_step
    assert torch.equal(model.weight, before)


def test_gradient_accumulation_skips_the_window_step():
    model, wrapper = make(accumulative_counts=2)
    wrapper.initialize_count_status(model, 0, 4)
    before = model.weight.detach().clone()
    wrapper.update_params(loss_of(model, math.nan))  # accumulate only
    assert not wrapper.skipped_last_step
    wrapper.update_params(loss_of(model))  # step of the window: skipped
    assert wrapper.skipped_last_step
    assert torch.equal(model.weight, before)
    wrapper.update_params(loss_of(model))
    wrapper.update_params(loss_of(model))
    assert not wrapper.skipped_last_step
    assert not torch.equal(model.weight, before)


DIST_SCRIPT = textwrap.dedent('''
    import math, os, sys
    import torch, torch.distributed as dist, torch.nn as nn
    from torch.nn.parallel import DistributedDataParallel as DDP
    from mmssda.engine.optimizers.non_finite_skip_optim_wrapper import \\
        NonFiniteSkipOptimWrapper
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = DDP(nn.Linear(3, 1))
    wrapper = NonFiniteSkipOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1))
    before = model.module.weight.detach().clone()
    # only rank 1's loss is non-finite; it still runs backward (no DDP
    # deadlock) and both ranks agree to skip
    scale = math.nan if rank == 1 else 1.0
    loss = (model(torch.ones(2, 3)) * 0 + (scale if rank == 1 else 0)).sum()
    loss = loss + model(torch.ones(2, 3)).sum()
    wrapper.update_params(loss)
    assert wrapper.skipped_last_step, rank
    assert torch.equal(model.module.weight, before), rank
    wrapper.update_params(model(torch.ones(2, 3)).sum())
    assert not wrapper.skipped_last_step, rank
    w = model.module.weight.detach().clone()
    ws = [torch.zeros_like(w) for _ in range(2)]
    dist.all_gather(ws, w)
    assert torch.equal(ws[0], ws[1]) and not torch.equal(w, before)
    # one file per rank: the ranks' stdout lines can interleave
    open(os.path.join(os.environ['OK_DIR'], f'rank{rank}.ok'), 'w').close()
    dist.barrier()
    del model
    dist.destroy_process_group()
''')


def test_ranks_agree_to_skip(tmp_path):
    script = tmp_path / 'skip_dist.py'
    script.write_text(DIST_SCRIPT)
    env = dict(
        os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
        OK_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         '--standalone', str(script)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert (tmp_path / 'rank0.ok').exists(), out[-3000:]
    assert (tmp_path / 'rank1.ok').exists(), out[-3000:]


class BufferProbe(Hook):
    """Turns the inputs of the source streams of iteration ``nan_iter`` into
    NaN (in the data preprocessor's output) and records every buffer of
    student, teacher and student-EMA after each iteration."""

    priority = 'LOWEST'

    def __init__(self, nan_iter):
        self.nan_iter = nan_iter
        self.buffers = []

    def before_train(self, runner):
        preprocessor = runner.model.data_preprocessor
        forward = preprocessor.forward

        def nan_forward(data, training=False):
            out = forward(data, training)
            if training and runner.iter == self.nan_iter:
                for stream in ('source_real', 'source_fake'):
                    out['inputs'][stream] = out['inputs'][stream] * math.nan
            return out

        preprocessor.forward = nan_forward

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        ema = next(h for h in runner.hooks if isinstance(h, StudentEMAHook))
        self.buffers.append({
            f'{name}.{key}': buf.detach().clone()
            for name, module in (('student', runner.model.student),
                                 ('teacher', runner.model.teacher),
                                 ('ema', ema.ema_model.module))
            for key, buf in module.named_buffers()
        })


def test_nan_batch_leaves_every_buffer_of_the_ssda_detector(
        tmp_path, monkeypatch):
    make_fog_shapes(tmp_path)
    omit_config_text(monkeypatch)
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(TINY_SSDA)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = 'nan_batch_buffers'
    cfg.visualizer.name = 'nan_batch_buffers'
    cfg.train_cfg.max_iters = 3
    cfg.default_hooks.checkpoint.interval = 100
    runner = Runner.from_cfg(cfg)
    probe = BufferProbe(nan_iter=1)
    runner.register_hook(probe)
    runner.train()

    assert runner.optim_wrapper.num_skipped_steps == 1
    before, after_nan, after_good = probe.buffers
    # the student's BatchNorm statistics (and the teacher's and EMA's,
    # averaged from them) are float buffers here
    assert sum(k.endswith('running_var') for k in before) > 30
    assert before.keys() == after_nan.keys()
    for key, value in after_nan.items():
        assert torch.isfinite(value.float()).all(), key
        assert torch.equal(value, before[key]), key
    # the next good step averaged finite statistics into teacher and EMA
    for key, value in after_good.items():
        assert torch.isfinite(value.float()).all(), key
    assert not torch.equal(after_good['teacher.backbone.stem.bn.running_mean'],
                           before['teacher.backbone.stem.bn.running_mean'])
