import random
from types import SimpleNamespace

import numpy as np
import torch

from mmssda.engine.hooks.random_state_hook import (RandomStateHook,
                                                   get_random_states,
                                                   set_random_states)
from mmssda.registry import HOOKS


def draws():
    return (random.random(), float(np.random.rand()),
            float(torch.rand(1)), np.random.normal())


def test_states_survive_weights_only_load_and_restore(tmp_path):
    hook = HOOKS.build(dict(type='RandomStateHook'))
    assert isinstance(hook, RandomStateHook)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    checkpoint = dict(meta=dict(iter=2))
    hook.before_save_checkpoint(None, checkpoint)
    expected = draws()
    path = str(tmp_path / 'ckpt.pth')
    torch.save(checkpoint, path)
    # plain types and tensors: no allow-list entry needed
    loaded = torch.load(path, weights_only=True)

    random.seed(10)
    np.random.seed(10)
    torch.manual_seed(10)
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), loaded)
    assert hook.has_pending_states
    # states are applied by the loop right before the first batch, not on
    # load (Runner.resume may reseed after loading)
    assert draws() != expected
    assert hook.restore_random_states()
    assert draws() == expected
    assert not hook.restore_random_states()  # only once


def test_load_without_resume_discards_states():
    hook = RandomStateHook()
    checkpoint = {}
    hook.before_save_checkpoint(None, checkpoint)
    hook.after_load_checkpoint(SimpleNamespace(_resume=False), checkpoint)
    assert not hook.has_pending_states
    hook.after_load_checkpoint(SimpleNamespace(_resume=True), {})
    assert not hook.has_pending_states


def test_fallback_restores_before_first_iter():
    hook = RandomStateHook()
    torch.manual_seed(0)
    states = get_random_states()
    expected = draws()
    hook.after_load_checkpoint(
        SimpleNamespace(_resume=True), dict(random_states=states))
    hook.before_train_iter(None, batch_idx=0)
    assert draws() == expected
    set_random_states({})  # missing entries are left alone
