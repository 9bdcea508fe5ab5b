import math
from unittest.mock import Mock

import pytest
import torch

from mmssda.engine.hooks import YOLOv5IterParamSchedulerHook


def make_runner(max_iters=100):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
    optimizer = torch.optim.SGD([{
        'params': [p]
    } for p in params],
                                lr=0.01,
                                momentum=0.937)
    runner = Mock()
    runner.optim_wrapper.optimizer = optimizer
    runner.max_iters = max_iters
    return runner


def lrs_at(hook, runner, it):
    runner.iter = it
    hook.before_train_iter(runner, it)
    groups = runner.optim_wrapper.optimizer.param_groups
    return [g['lr'] for g in groups], [g['momentum'] for g in groups]


def one_cycle(it, max_iters=100, lrf=0.2):
    return ((1 - math.cos(it * math.pi / max_iters)) / 2) * (lrf - 1) + 1


def test_warmup_then_cosine_to_lr_factor():
    runner = make_runner()
    hook = YOLOv5IterParamSchedulerHook(warmup_iters=10)
    hook.before_train(runner)
    lrs, momenta = lrs_at(hook, runner, 0)
    assert lrs == pytest.approx([0., 0., 0.1])
    assert momenta == pytest.approx([0.8] * 3)
    lrs, momenta = lrs_at(hook, runner, 5)
    target = 0.01 * one_cycle(5)
    assert lrs == pytest.approx([target / 2, target / 2, (0.1 + target) / 2])
    assert momenta == pytest.approx([(0.8 + 0.937) / 2] * 3)
    lrs, momenta = lrs_at(hook, runner, 50)
    assert lrs == pytest.approx([0.01 * one_cycle(50)] * 3)
    assert momenta == pytest.approx([0.937] * 3)
    lrs, _ = lrs_at(hook, runner, 100)
    assert lrs == pytest.approx([0.01 * 0.2] * 3)


def test_linear_and_explicit_max_iters():
    runner = make_runner(max_iters=1000)
    hook = YOLOv5IterParamSchedulerHook(
        scheduler_type='linear', lr_factor=0.01, warmup_iters=0,
        max_iters=200)
    hook.before_train(runner)
    lrs, _ = lrs_at(hook, runner, 100)
    assert lrs == pytest.approx([0.01 * (0.5 * 0.99 + 0.01)] * 3)
    with pytest.raises(ValueError):
        YOLOv5IterParamSchedulerHook(scheduler_type='step')


def test_skipped_iterations_hold_the_schedule_back_and_resume():
    runner = make_runner()
    hook = YOLOv5IterParamSchedulerHook(warmup_iters=10)
    hook.before_train(runner)
    runner.param_schedulers = None
    runner.optim_wrapper.should_update.return_value = True
    for it, skipped in enumerate([False, True, True, False]):
        runner.iter = it
        runner.optim_wrapper.skipped_last_step = skipped
        hook.after_train_iter(runner, it)
    assert hook.skipped_iters == 2
    # iteration 4 runs at schedule position 2
    lrs, _ = lrs_at(hook, runner, 4)
    assert lrs == pytest.approx([hook.get_lr(i, 2) for i in range(3)])
    assert lrs != pytest.approx([hook.get_lr(i, 4) for i in range(3)])
    checkpoint = {}
    hook.before_save_checkpoint(runner, checkpoint)
    resumed = YOLOv5IterParamSchedulerHook(warmup_iters=10)
    runner._resume = True
    resumed.after_load_checkpoint(runner, checkpoint)
    assert resumed.skipped_iters == 2
