"""NonFiniteSkipAmpOptimWrapper: bfloat16 autocast on
the CPU with the non-finite skipping, and a step that the gradient scaler
skips is not an optimizer step for the mean teacher, the student-EMA or the
lr schedule."""
import copy
import math

import pytest
import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

from mmssda.engine.hooks import StudentEMAHook
from mmssda.engine.optimizers import NonFiniteSkipAmpOptimWrapper
from mmssda.registry import OPTIM_WRAPPERS

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='tests the CPU (bfloat16) path')


def make(accumulative_counts=1):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    wrapper = NonFiniteSkipAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        accumulative_counts=accumulative_counts)
    return model, wrapper


def test_registered_and_bfloat16_on_cpu():
    assert OPTIM_WRAPPERS.get('NonFiniteSkipAmpOptimWrapper') is \
        NonFiniteSkipAmpOptimWrapper
    model, wrapper = make()
    assert wrapper.cast_dtype is torch.bfloat16
    assert not wrapper.loss_scaler.is_enabled()  # bfloat16: no scaling
    with wrapper.optim_context(model):
        out = model(torch.randn(4, 3))
    assert out.dtype is torch.bfloat16
    before = model[0].weight.detach().clone()
    wrapper.update_params(out.float().square().mean())
    assert not wrapper.skipped_last_step
    assert not torch.equal(model[0].weight, before)
    with pytest.raises(ValueError, match='optim_wrapper.dtype'):
        NonFiniteSkipAmpOptimWrapper(
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            dtype='float16')


def test_non_finite_batch_under_autocast_skips_and_restores_buffers():
    model, wrapper = make()
    with wrapper.optim_context(model):
        wrapper.update_params(model(torch.randn(4, 3)).float().mean())
    state = copy.deepcopy(model.state_dict())
    with wrapper.optim_context(model):
        loss = model(torch.full((4, 3), math.nan)).float().mean()
    assert torch.isnan(model[1].running_mean).all()  # the forward wrote it
    wrapper.update_params(loss)
    assert wrapper.skipped_last_step
    assert not wrapper.scaler_skipped_last_step
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_scaler_skip_detected_and_scale_lowered():
    model, wrapper = make()
    # an enabled scaler on the CPU behaves as on a GPU: a scale of 1e10
    # turns gradients of 1e30 into inf, as float16 overflows
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=1e10)
    before = copy.deepcopy(model.state_dict())
    with wrapper.optim_context(model):
        loss = model(torch.randn(4, 3)).float().square().mean() * 1e30
    assert torch.isfinite(loss)
    wrapper.update_params(loss)
    assert wrapper.skipped_last_step and wrapper.scaler_skipped_last_step
    assert wrapper.loss_scaler.get_scale() == 5e9
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    with wrapper.optim_context(model):
        loss = model(torch.randn(4, 3)).float().square().mean()
    wrapper.update_params(loss)
    assert not wrapper.skipped_last_step
    assert not wrapper.scaler_skipped_last_step
    assert not torch.equal(model[0].weight, before['0.weight'])
    # the scaler's state round-trips through the wrapper's state dict
    assert wrapper.state_dict()['loss_scaler']['scale'] == 5e9


class ToyTeacherStudent(BaseModel):
    """A student (with BatchNorm) and its teacher; the loss of iteration
    ``overflow_iter`` is multiplied by 1e30: finite, but its gradients
    scaled by 1e10 overflow."""

    def __init__(self, overflow_iter):
        super().__init__()
        self.student = nn.Sequential(
            nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
        self.teacher = copy.deepcopy(self.student)
        self.overflow_iter = overflow_iter
        self.calls = 0

    def train(self, mode=True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, inputs, data_samples=None, mode='tensor'):
        loss = self.student(torch.stack(inputs)).float().square().mean()
        if self.calls == self.overflow_iter:
            loss = loss * 1e30
        self.calls += 1
        return dict(loss=loss)


class Probe(Hook):
    """Records the lr set for each iteration and the teacher, student and
    EMA states after each; puts an enabled gradient scaler in the wrapper
    (the CPU path has none)."""
    priority = 'LOWEST'

    def __init__(self):
        self.lrs, self.states = [], []

    def before_train(self, runner):
        runner.optim_wrapper.loss_scaler = torch.amp.GradScaler(
            'cpu', init_scale=1e10)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        ema = next(h for h in runner.hooks if isinstance(h, StudentEMAHook))
        model = runner.model
        self.states.append(
            dict(teacher=copy.deepcopy(model.teacher.state_dict()),
                 student=copy.deepcopy(model.student.state_dict()),
                 ema=copy.deepcopy(ema.ema_model.state_dict()),
                 skipped=runner.optim_wrapper.skipped_last_step))


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_scaler_skipped_step_leaves_teacher_ema_and_schedule(tmp_path):
    torch.manual_seed(0)
    overflow_iter = 2
    loader = DataLoader([torch.randn(2) for _ in range(16)], batch_size=4,
                        collate_fn=lambda x: dict(inputs=x))
    probe = Probe()
    runner = Runner(
        model=ToyTeacherStudent(overflow_iter),
        work_dir=str(tmp_path),
        train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=5),
        optim_wrapper=dict(
            type='NonFiniteSkipAmpOptimWrapper',
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(
            param_scheduler=dict(
                type='YOLOv5IterParamSchedulerHook', warmup_iters=2,
                warmup_bias_lr=0.0)),
        custom_hooks=[
            dict(type='SSDAMeanTeacherHook', momentum=0.5),
            dict(type='StudentEMAHook', priority=49),
            dict(type='NonFiniteLossHook', max_consecutive=1), probe
        ],
        default_scope='mmssda',
        experiment_name='amp_scaler_skip')
    runner.train()

    skipped = [s['skipped'] for s in probe.states]
    assert skipped == [i == overflow_iter for i in range(5)]
    # the scaler skip: teacher, student (weights and BN statistics) and EMA
    # are as after the previous iteration ...
    before, after = probe.states[overflow_iter - 1:overflow_iter + 1]
    for part in ('teacher', 'student', 'ema'):
        assert states_equal(after[part], before[part]), part
    # ... while the good steps around it moved all three
    for i in (overflow_iter - 1, overflow_iter + 1):
        for part in ('teacher', 'student', 'ema'):
            assert not states_equal(probe.states[i][part],
                                    probe.states[i - 1][part]), (i, part)
    # the schedule did not advance over the skipped iteration: iteration 3
    # gets the lr of (schedule position) 2, iteration 4 that of 3
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'YOLOv5IterParamSchedulerHook')
    expected = [hook.get_lr(0, i) for i in (0, 1, 2, 2, 3)]
    assert probe.lrs == pytest.approx(expected)
    assert len(set(probe.lrs)) == 4
    assert hook.skipped_iters == 1
    # the overflow is the scaler's calibration, not a non-finite step: the
    # hook (max_consecutive=1) did not stop training
    hub = runner.message_hub
    assert hub.get_info('amp_overflow_steps') == 1
    assert not hub.get_info('non_finite_steps')
    assert runner.optim_wrapper.loss_scaler.get_scale() == 5e9
