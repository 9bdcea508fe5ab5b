import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmssda.registry import HOOKS

CHECKPOINT_KEY = 'random_states'


def get_random_states() -> dict:
    """The global random states of ``random``, numpy and torch.

    The states are stored as types that ``torch.load(weights_only=True)``
    reads without any allow-list: tuples, lists, ints, floats and tensors.

    Returns:
        dict: ``python`` (``random.getstate()``), ``numpy`` (the legacy
        MT19937 state as ``[name, key list, pos, has_gauss, cached]``),
        ``torch`` (CPU generator state, uint8 tensor) and ``cuda`` (one state
        tensor per visible device; empty without CUDA).
    """
    name, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = list(torch.cuda.get_rng_state_all())
    return dict(
        python=random.getstate(),
        numpy=[name, key.tolist(), int(pos), int(has_gauss), float(cached)],
        torch=torch.get_rng_state(),
        cuda=cuda)


def set_random_states(states: dict) -> None:
    """Restore states written by :func:`get_random_states`.

    Args:
        states (dict): The states; missing entries are left alone. CUDA
            states are restored only when the number of devices matches.
    """
    if 'python' in states:
        version, internal, gauss = states['python']
        random.setstate((version, tuple(internal), gauss))
    if 'numpy' in states:
        name, key, pos, has_gauss, cached = states['numpy']
        np.random.set_state(
            (name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
    if 'torch' in states:
        torch.set_rng_state(states['torch'].cpu().to(torch.uint8))
    cuda = states.get('cuda') or []
    if cuda and torch.cuda.is_available() \
            and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the global random states in checkpoints and restore them on
    resume, so that data augmentation continues where it stopped.

    ``before_save_checkpoint`` writes ``checkpoint['random_states']`` (see
    :func:`get_random_states`: plain lists/ints and tensors, readable by
    ``torch.load(weights_only=True)``). ``after_load_checkpoint`` only keeps
    them: :meth:`Runner.resume` may call ``set_randomness`` *after* loading
    (when the checkpoint's seed differs from the config's), and rebuilding
    the dataloader iterator draws from torch's generator, so restoring there
    would be undone. :class:`SSDAIterBasedTrainLoop` calls
    :meth:`restore_random_states` right before fetching the first batch after
    resuming; with any other loop the hook restores them in
    ``before_train_iter`` of the first iteration (the first batch was then
    already loaded with the unrestored states, so resume is not exact).

    Only ``load_from`` with ``resume=True`` restores the states; loading
    weights (``load_from`` without resume) discards them.

    Scope of exactness: the states are those of the process that saves the
    checkpoint (rank 0). With ``num_workers=0`` all augmentation runs in that
    process and resuming reproduces it exactly (single process, or several
    ranks seeded alike with ``randomness.diff_rank_seed=False``). Dataloader
    workers (``num_workers>0``) are re-seeded by MMEngine's
    ``worker_init_fn`` when they start, i.e. after resuming they restart
    their random streams: the data order is still exact (the sampler
    position is restored), but augmentation draws after the resume point
    differ from the uninterrupted run (same distribution, not bit-identical).

    Args:
        priority (str | int): Hook priority. Defaults to ``'VERY_HIGH'``.

    Example:
        >>> custom_hooks = [dict(type='RandomStateHook')]
    """

    def __init__(self, priority='VERY_HIGH') -> None:
        self.priority = priority
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Put the current random states in ``checkpoint``.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The checkpoint being saved.
        """
        checkpoint[CHECKPOINT_KEY] = get_random_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's random states for the resumed training.

        Args:
            runner (Runner): The runner.
            checkpoint (dict): The loaded checkpoint.
        """
        states = checkpoint.get(CHECKPOINT_KEY)
        self._pending = states if getattr(runner, '_resume', False) else None

    @property
    def has_pending_states(self) -> bool:
        """bool: Whether resumed states wait to be restored."""
        return self._pending is not None

    def restore_random_states(self) -> bool:
        """Restore the resumed states, once.

        Returns:
            bool: Whether states were restored.
        """
        if self._pending is None:
            return False
        set_random_states(self._pending)
        self._pending = None
        return True

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Fallback for loops that do not restore before the first batch."""
        if self.restore_random_states():
            print_log(
                'RandomStateHook: random states restored after the first '
                'batch was loaded; use SSDAIterBasedTrainLoop for an exact '
                'resume.',
                logger='current',
                level=logging.WARNING)
