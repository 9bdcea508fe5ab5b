"""PseudoLabelHealthHook: one warning when the teacher gives no
pseudo-labels after burn-in, silence otherwise."""
import glob
import logging
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from mmengine.runner import Runner

from mmssda.engine.hooks import PseudoLabelHealthHook, SSDAMeanTeacherHook
from tests.training_helpers import TINY_SSDA, make_fog_shapes, omit_config_text


class FakeRunner(SimpleNamespace):
    """What the hook reads from a runner: iteration, model, message hub,
    hooks and ``load_from``."""


def fake_runner(burn_in_iters=3, score_thr=0.5):
    model = SimpleNamespace(
        distill_active=False,
        semi_train_cfg=dict(pseudo_label_cfg=dict(score_thr=score_thr)))
    return FakeRunner(
        iter=0,
        model=model,
        message_hub=MessageHub(f'health_{id(model)}'),
        hooks=[SSDAMeanTeacherHook(burn_in_iters=burn_in_iters)],
        _load_from=None)


def drive(hook, runner, num_pseudo, active=True, extra=None):
    """Run the hook after one iteration per value of ``num_pseudo``; return
    the warnings logged."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        for value in num_pseudo:
            runner.model.distill_active = active
            outputs = {'source_real.loss_obj': torch.tensor(1.0)}
            if value is not None:
                outputs['distill.num_pseudo'] = torch.tensor(value)
                outputs['distill.loss_obj'] = torch.tensor(0.01)
                outputs.update(extra or {})
            hook.after_train_iter(runner, runner.iter, None, outputs)
            runner.iter += 1
    finally:
        logger.removeHandler(handler)
    return [
        r.getMessage() for r in records if r.levelno == logging.WARNING
        and 'Pseudo-label health' in r.getMessage()
    ]


def test_warns_once_with_numbers_and_advice():
    hook = PseudoLabelHealthHook(min_pseudo_per_img=0.1, window=5)
    runner = fake_runner(burn_in_iters=3, score_thr=0.5)
    scores = {
        'distill.score_p50': torch.tensor(0.02),
        'distill.score_p99': torch.tensor(0.31),
        'distill.num_pseudo_box': torch.tensor(0.0),  # per-class: not shown
    }
    # burn-in: nothing counts, even a logged zero
    assert drive(hook, runner, [0.0] * 3, active=False, extra=scores) == []
    # four distilling iterations: not yet a full window
    assert drive(hook, runner, [0.0] * 4, extra=scores) == []
    assert hook.warning is None
    warnings = drive(hook, runner, [0.0], extra=scores)
    assert len(warnings) == 1
    msg = warnings[0]
    assert '0 pseudo-boxes per image' in msg
    assert 'last 5 distilling iterations (4-8)' in msg
    assert 'distill.score_p50 0.02' in msg and 'distill.score_p99 0.31' in msg
    assert 'num_pseudo_box' not in msg and 'loss' not in msg.split(
        'Teacher statistics')[1].split('Settings')[0]
    assert 'score_thr=0.5' in msg and 'burn_in_iters=3' in msg
    assert 'load_from=None' in msg
    for advice in ('lower score_thr', 'burn-in', 'pretrained weights'):
        assert advice in msg
    info = runner.message_hub.get_info(PseudoLabelHealthHook.INFO_KEY)
    assert info == dict(iter=7, message=msg)
    # once only
    assert drive(hook, runner, [0.0] * 20, extra=scores) == []


def test_silent_when_pseudo_labels_exist():
    hook = PseudoLabelHealthHook(min_pseudo_per_img=0.1, window=5)
    runner = fake_runner()
    assert drive(hook, runner, [2.0] * 50) == []
    # sparse but present: mean 0.2 per image over every window of 5
    assert drive(hook, runner, [0.0, 0.0, 0.0, 0.0, 1.0] * 10) == []
    assert hook.warning is None
    assert runner.message_hub.get_info(PseudoLabelHealthHook.INFO_KEY) is None


def test_judges_the_mean_over_the_window():
    hook = PseudoLabelHealthHook(min_pseudo_per_img=0.5, window=4)
    runner = fake_runner()
    # a healthy start, then the teacher collapses: it warns as soon as the
    # mean of the last 4 iterations drops below 0.5
    assert drive(hook, runner, [3.0, 1.0, 0.0, 0.0]) == []  # mean 1.0
    assert len(drive(hook, runner, [0.0])) == 1  # [1, 0, 0, 0]: 0.25
    assert hook.warning is not None


def test_silent_during_burn_in_and_window_restarts_after_it():
    hook = PseudoLabelHealthHook(min_pseudo_per_img=0.1, window=5)
    runner = fake_runner(burn_in_iters=100)
    assert drive(hook, runner, [0.0] * 100, active=False) == []
    # the burn-in's zeros do not count towards the first window
    assert drive(hook, runner, [0.0] * 4) == []
    assert len(drive(hook, runner, [0.0])) == 1


def test_silent_without_distillation():
    # a source-only model never logs distill.num_pseudo
    hook = PseudoLabelHealthHook(window=2)
    runner = fake_runner(burn_in_iters=0)
    assert drive(hook, runner, [None] * 10) == []


def test_warning_is_not_repeated_after_resume():
    hook = PseudoLabelHealthHook(window=2)
    runner = fake_runner()
    assert len(drive(hook, runner, [0.0] * 2)) == 1
    state = runner.message_hub.state_dict()
    resumed, new_runner = PseudoLabelHealthHook(window=2), fake_runner()
    new_runner.message_hub.load_state_dict(state)
    resumed.before_train(new_runner)
    assert drive(resumed, new_runner, [0.0] * 10) == []
    # a fresh run (no warning in its message hub) does warn
    fresh, fresh_runner = PseudoLabelHealthHook(window=2), fake_runner()
    fresh.before_train(fresh_runner)
    assert len(drive(fresh, fresh_runner, [0.0] * 2)) == 1


@pytest.mark.parametrize('kwargs', [
    dict(min_pseudo_per_img=0), dict(window=0), dict(window=2.5)])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='PseudoLabelHealthHook'):
        PseudoLabelHealthHook(**kwargs)


# ---------------------------------------------------------------- real runs
def tiny_ssda_cfg(root, name, score_thr, burn_in_iters, max_iters):
    cfg = Config.fromfile(TINY_SSDA)
    cfg.work_dir = str(root / name)
    cfg.experiment_name = name
    cfg.visualizer.name = f'{name}@{root}'
    cfg.train_cfg.max_iters = max_iters
    cfg.model.semi_train_cfg.pseudo_label_cfg.score_thr = score_thr
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=1000,
        save_last=False)
    # the recipe's own health hook, with a window that fits the tiny run
    health_hooks = [
        hook for hook in cfg.custom_hooks
        if hook.type == 'PseudoLabelHealthHook'
    ]
    assert len(health_hooks) == 1
    health_hooks[0].window = 2
    for hook in cfg.custom_hooks:
        if hook.type == 'SSDAMeanTeacherHook':
            hook.burn_in_iters = burn_in_iters
    return cfg


def train_and_capture(cfg):
    runner = Runner.from_cfg(cfg)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    runner.logger.addHandler(handler)
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(handler)
    warnings = [
        r.getMessage() for r in records if r.levelno == logging.WARNING
        and 'Pseudo-label health' in r.getMessage()
    ]
    return runner, warnings


def tensorboard_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    events = glob.glob(
        osp.join(log_dir, 'vis_data', '**', 'events.out.tfevents.*'),
        recursive=True)
    assert events, f'no TensorBoard event file under {log_dir}'
    scalars = {}
    for path in events:
        acc = EventAccumulator(path)
        acc.Reload()
        for tag in acc.Tags()['scalars']:
            scalars[tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
    return scalars


@pytest.fixture(scope='module')
def fog_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('health')
    make_fog_shapes(root, num_source=4, num_target=4)
    return root


def test_real_teacher_that_predicts_nothing_warns_once_and_logs_to_tb(
        fog_root, monkeypatch):
    """The paper's threshold 0.5 on an untrained tiny YOLOv5: its teacher
    gives no pseudo-label. Burn-in 2 iterations, window 2: the warning
    comes after iteration 4 (1-based) and only then."""
    pytest.importorskip('tensorboard')
    omit_config_text(monkeypatch)
    monkeypatch.chdir(fog_root)
    runner, warnings = train_and_capture(
        tiny_ssda_cfg(fog_root, 'nothing', score_thr=0.5, burn_in_iters=2,
                      max_iters=6))
    hub = runner.message_hub
    num_pseudo = hub.get_scalar('train/distill.num_pseudo')
    assert len(num_pseudo.data[0]) == 4  # distilled after the burn-in only
    assert num_pseudo.data[0].max() == 0  # the teacher predicted nothing
    assert len(warnings) == 1
    assert 'iterations (3-4)' in warnings[0]
    assert 'score_thr=0.5' in warnings[0]
    assert 'burn_in_iters=2' in warnings[0]
    assert hub.get_info(PseudoLabelHealthHook.INFO_KEY)['iter'] == 3
    # the detector's statistics reach TensorBoard (LoggerHook interval 1)
    scalars = tensorboard_scalars(runner.log_dir)
    assert [step for step, _ in scalars['distill.num_pseudo']] == [
        3, 4, 5, 6]
    assert all(value == 0 for _, value in scalars['distill.num_pseudo'])
    assert 'distill.loss_obj' in scalars


def test_real_teacher_with_pseudo_labels_stays_silent(fog_root, monkeypatch):
    omit_config_text(monkeypatch)
    monkeypatch.chdir(fog_root)
    runner, warnings = train_and_capture(
        tiny_ssda_cfg(fog_root, 'some', score_thr=0.0, burn_in_iters=0,
                      max_iters=3))
    num_pseudo = runner.message_hub.get_scalar('train/distill.num_pseudo')
    assert len(num_pseudo.data[0]) == 3 and num_pseudo.data[0].min() > 0.1
    assert warnings == []
    assert runner.message_hub.get_info(
        PseudoLabelHealthHook.INFO_KEY) is None
