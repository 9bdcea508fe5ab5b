import copy
from unittest.mock import Mock

import torch

from mmssda.engine.hooks import StudentEMAHook
from tests.test_models.utils import build_ssda


def mock_runner(model, should_update=True, resume=False):
    runner = Mock()
    runner.model = model
    runner.iter = 0
    runner.optim_wrapper.should_update.return_value = should_update
    runner.optim_wrapper.skipped_last_step = False
    runner._resume = resume
    return runner


def perturb(module, scale=0.1, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)


def first_weight(module):
    return next(iter(module.parameters()))


def trained_hook(model):
    hook = StudentEMAHook()
    hook.before_run(mock_runner(model))
    hook.after_train_iter(mock_runner(model), 0)  # first update copies
    perturb(model.student)
    hook.after_train_iter(mock_runner(model), 1)
    return hook


def test_averages_the_student_only_after_optimizer_steps():
    model = build_ssda()
    hook = StudentEMAHook()
    hook.before_run(mock_runner(model))
    student_keys = set(model.student.state_dict())
    assert {k[len('module.'):]
            for k in hook.ema_model.state_dict()
            if k.startswith('module.')} == student_keys
    hook.after_train_iter(mock_runner(model, should_update=False), 0)
    assert hook.ema_model.steps.item() == 0
    hook.after_train_iter(mock_runner(model), 1)
    assert hook.ema_model.steps.item() == 1
    ema0 = first_weight(hook.ema_model.module).clone()
    student0 = first_weight(model.student).clone()
    perturb(model.student)
    hook.after_train_iter(mock_runner(model), 2)
    # YOLOv5's ramped decay at update 1: d = 0.9999 * (1 - exp(-2 / 2000))
    momentum = 1 - 0.9999 * (1 - torch.exp(torch.tensor(-2 / 2000.)))
    expected = ema0 + momentum.item() * (first_weight(model.student) - ema0)
    torch.testing.assert_close(first_weight(hook.ema_model.module), expected)
    assert torch.equal(ema0, student0)


def test_validation_swaps_ema_into_student():
    model = build_ssda()
    hook = trained_hook(model)
    raw = first_weight(model.student).clone()
    ema = first_weight(hook.ema_model.module).clone()
    teacher = first_weight(model.teacher).clone()
    assert not torch.equal(raw, ema)
    hook.before_val_epoch(mock_runner(model))
    assert torch.equal(first_weight(model.student), ema)
    assert torch.equal(first_weight(model.teacher), teacher)
    hook.after_val_epoch(mock_runner(model))
    assert torch.equal(first_weight(model.student), raw)


def test_checkpoint_round_trip():
    model = build_ssda()
    hook = trained_hook(model)
    raw_state = copy.deepcopy(model.student.state_dict())
    ema_state = copy.deepcopy(hook.ema_model.module.state_dict())
    checkpoint = dict(state_dict=copy.deepcopy(model.state_dict()))
    hook.before_save_checkpoint(mock_runner(model), checkpoint)
    # the saved student is the EMA, the raw student is in ema_state_dict
    for k, v in ema_state.items():
        assert torch.equal(checkpoint['state_dict']['student.' + k], v)
        assert torch.equal(checkpoint['ema_state_dict']['module.' + k],
                           raw_state[k])
    assert 'steps' in checkpoint['ema_state_dict']

    # resume: EMA and raw student come back
    resumed = build_ssda(seed=9)
    fresh = StudentEMAHook()
    fresh.before_run(mock_runner(resumed))
    loaded = copy.deepcopy(checkpoint)
    fresh.after_load_checkpoint(mock_runner(resumed, resume=True), loaded)
    resumed.load_state_dict(loaded['state_dict'])
    for k, v in ema_state.items():
        assert torch.equal(fresh.ema_model.module.state_dict()[k], v)
        assert torch.equal(resumed.student.state_dict()[k], raw_state[k])
    assert fresh.ema_model.steps.item() == hook.ema_model.steps.item()

    # load_from (not resume): the EMA starts from the saved student
    other = StudentEMAHook()
    other.before_run(mock_runner(build_ssda(seed=7)))
    other.after_load_checkpoint(
        mock_runner(model, resume=False), copy.deepcopy(checkpoint))
    for k, v in ema_state.items():
        assert torch.equal(other.ema_model.module.state_dict()[k], v)
