import logging
import math
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader

import mmssda.engine.optimizers.non_finite_skip_optim_wrapper  # noqa: F401
from mmssda.engine.hooks.non_finite_loss_hook import NonFiniteLossHook


class ToySSDA(BaseModel):
    """Loss keys like SSDADetector's; ``distill.loss_obj`` is NaN from
    iteration ``bad_from`` (0-based) on, up to ``bad_until``."""

    def __init__(self, bad_from=2, bad_until=100):
        super().__init__()
        self.linear = nn.Linear(2, 1)
        self.bad = range(bad_from, bad_until)
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(torch.stack(inputs)).mean()
        distill = out * 0.1
        if self.calls in self.bad:
            distill = distill * math.nan
        self.calls += 1
        return {
            'source_real.loss_cls': out.abs(),
            'distill.loss_obj': distill,
            'consistency.loss': out * 0
        }


def run(tmp_path, model, wrapper='mmssda.NonFiniteSkipOptimWrapper',
        max_iters=6, max_consecutive=2, name='nf'):
    loader = DataLoader([torch.ones(2)] * 4, batch_size=1,
                        collate_fn=lambda x: dict(inputs=x))
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(type=wrapper,
                           optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[
            dict(type='mmssda.NonFiniteLossHook',
                 max_consecutive=max_consecutive)
        ],
        log_processor=dict(by_epoch=False),
        default_scope='mmssda',
        experiment_name=name)
    return runner


def test_stops_after_consecutive_bad_steps_and_keeps_good_checkpoint(
        tmp_path, caplog):
    runner = run(tmp_path, ToySSDA(bad_from=2), name='nf_stop')
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
    checkpoint_hook = next(h for h in runner.hooks
                           if type(h).__name__ == 'CheckpointHook')
    assert runner.hooks.index(hook) < runner.hooks.index(checkpoint_hook)
    with pytest.raises(RuntimeError) as err:
        runner.train()
    msg = str(err.value)
    assert '2 consecutive' in msg and 'distill.loss_obj' in msg
    assert 'last good checkpoint is kept' in msg and 'iter_3.pth' in msg
    # iteration 3 was bad but skipped: its checkpoint holds good weights;
    # iteration 4 raised before CheckpointHook
    assert not osp.exists(osp.join(str(tmp_path), 'iter_4.pth'))
    good = torch.load(osp.join(str(tmp_path), 'iter_2.pth'),
                      map_location='cpu')['state_dict']
    last = torch.load(osp.join(str(tmp_path), 'iter_3.pth'),
                      map_location='cpu')['state_dict']
    for k in good:
        assert torch.isfinite(last[k]).all()
        assert torch.equal(good[k], last[k])
    for k, v in runner.model.state_dict().items():
        assert torch.equal(good[k], v)
    assert runner.optim_wrapper.num_skipped_steps == 2
    hub = runner.message_hub
    assert hub.get_info('non_finite_steps') == 2
    assert hub.get_info('non_finite_consecutive') == 2
    assert hub.get_scalar('train/non_finite_consecutive').current() == 2


def test_warns_with_branch_and_resets_consecutive(tmp_path):
    # one bad iteration, then good ones: no stop, counts kept
    runner = run(tmp_path, ToySSDA(bad_from=1, bad_until=2), max_iters=4,
                 name='nf_warn')
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        runner.train()
    finally:
        logger.removeHandler(handler)
    warnings = [r.getMessage() for r in records
                if r.levelno == logging.WARNING
                and 'NonFiniteLossHook' in r.getMessage()]
    assert len(warnings) == 1
    assert "['distill.loss_obj']" in warnings[0]
    assert "branch(es) ['distill']" in warnings[0]
    assert 'iteration 2' in warnings[0]
    hub = runner.message_hub
    assert hub.get_info('non_finite_steps') == 1
    assert hub.get_info('non_finite_consecutive') == 0
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())


def test_plain_wrapper_stops_at_once(tmp_path):
    runner = run(tmp_path, ToySSDA(bad_from=1), wrapper='OptimWrapper',
                 name='nf_plain')
    with pytest.raises(RuntimeError, match='cannot skip the update'):
        runner.train()
    # the corrupt state of iteration 2 was not saved
    assert not osp.exists(osp.join(str(tmp_path), 'iter_2.pth'))
    assert osp.exists(osp.join(str(tmp_path), 'iter_1.pth'))


def test_branches_and_invalid_args():
    assert NonFiniteLossHook.branches(
        ['loss', 'source_real.loss_cls', 'source_real.loss_obj',
         'consistency.loss']) == ['total', 'source_real', 'consistency']
    assert NonFiniteLossHook.non_finite_keys(
        {'a.x': torch.tensor(math.inf), 'b': torch.tensor(1.0),
         'c': math.nan}) == ['a.x', 'c']
    with pytest.raises(ValueError):
        NonFiniteLossHook(max_consecutive=0)
