import logging
import math
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmssda.registry import HOOKS

DataBatch = Optional[dict]


def _is_finite(value) -> bool:
    """Whether a logged loss value (tensor or number) is finite."""
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all())
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    return True


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Report, count and limit iterations with NaN/Inf losses.

    After each iteration it reads ``outputs`` (the model's ``log_vars``, e.g.
    ``source_real.loss_cls``, ``distill.loss_obj``, ``consistency.loss``) and
    the optimizer wrapper's ``skipped_last_step`` flag
    (:class:`NonFiniteSkipOptimWrapper`). A bad step is logged as a warning
    naming the non-finite keys and their branches (the key prefix before the
    first ``.``; ``'total'`` for un-prefixed keys such as ``loss``); a step
    skipped for non-finite gradients only is reported as such. The total and
    the consecutive count of bad optimizer steps are logged as the scalars
    ``train/non_finite_steps`` and ``train/non_finite_consecutive`` and kept in
    the message hub's runtime info, so they survive a resume.

    After ``max_consecutive`` consecutive bad steps it raises
    :class:`RuntimeError`. The hook runs before :class:`CheckpointHook`
    (priority ``'ABOVE_NORMAL'``), and MMEngine saves nothing on an
    exception, so the last checkpoint written stays the last good one; the
    skipped steps did not change the weights either.

    Under AMP with loss scaling (:class:`NonFiniteSkipAmpOptimWrapper` on a
    GPU), a step that the gradient scaler skipped for inf/NaN scaled
    gradients while every loss was finite is the scaler's normal
    calibration (it halves the scale and retries, as in YOLOv5): it is
    logged at INFO level with the new scale and counted as
    ``train/amp_overflow_steps``, not as a non-finite step, and does not
    count towards ``max_consecutive``. Non-finite losses under AMP are
    handled like any other.

    With an optimizer wrapper that cannot skip (a plain ``OptimWrapper``) a
    non-finite loss has already been applied to the weights: the hook raises
    at once, before any checkpoint of that state is written.

    Args:
        max_consecutive (int): Consecutive bad optimizer steps tolerated
            before training stops. Defaults to 5.
        priority (str | int): Hook priority; must stay above
            ``CheckpointHook``'s. Defaults to ``'ABOVE_NORMAL'``.

    Example:
        >>> optim_wrapper = dict(type='NonFiniteSkipOptimWrapper', ...)
        >>> custom_hooks = [dict(type='NonFiniteLossHook', max_consecutive=5)]
    """

    TOTAL_KEY = 'non_finite_steps'
    CONSECUTIVE_KEY = 'non_finite_consecutive'
    OVERFLOW_KEY = 'amp_overflow_steps'

    def __init__(self, max_consecutive: int = 5,
                 priority='ABOVE_NORMAL') -> None:
        if max_consecutive < 1:
            raise ValueError('NonFiniteLossHook: max_consecutive must be '
                             f'>= 1, got {max_consecutive}.')
        self.max_consecutive = max_consecutive
        self.priority = priority

    @staticmethod
    def non_finite_keys(outputs: Optional[dict]) -> List[str]:
        """The keys of ``outputs`` whose value is NaN or Inf."""
        if not isinstance(outputs, dict):
            return []
        return [k for k, v in outputs.items() if not _is_finite(v)]

    @staticmethod
    def branches(keys: List[str]) -> List[str]:
        """Branch names (prefix before the first ``.``) of loss keys."""
        names = []
        for key in keys:
            name = key.split('.', 1)[0] if '.' in key else 'total'
            if name not in names:
                names.append(name)
        return names

    def _counts(self, runner) -> Dict[str, int]:
        hub = runner.message_hub
        return {
            key: int(hub.get_info(key) or 0)
            for key in (self.TOTAL_KEY, self.CONSECUTIVE_KEY)
        }

    def _set_counts(self, runner, total: int, consecutive: int) -> None:
        hub = runner.message_hub
        hub.update_info(self.TOTAL_KEY, total)
        hub.update_info(self.CONSECUTIVE_KEY, consecutive)
        hub.update_scalar(f'train/{self.TOTAL_KEY}', total)
        hub.update_scalar(f'train/{self.CONSECUTIVE_KEY}', consecutive)

    @staticmethod
    def _last_checkpoint(runner) -> str:
        path = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(path):
            with open(path) as f:
                # AtomicCheckpointHook records it relative to the work dir
                return osp.join(runner.work_dir, f.read().strip())
        return '(none written yet)'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DataBatch = None,
                         outputs: Optional[dict] = None) -> None:
        """Check the iteration's losses and the wrapper's skip flag.

        Args:
            runner (Runner): The runner.
            batch_idx (int): The iteration index.
            data_batch (dict, optional): The data batch.
            outputs (dict, optional): The logged losses of the iteration.
        """
        wrapper = runner.optim_wrapper
        can_skip = hasattr(wrapper, 'skipped_last_step')
        bad_keys = self.non_finite_keys(outputs)
        if len(bad_keys) > 1 and 'loss' in bad_keys:
            # the total follows its terms: name the terms
            bad_keys.remove('loss')
        skipped = bool(getattr(wrapper, 'skipped_last_step', False))
        if not bad_keys and getattr(wrapper, 'scaler_skipped_last_step',
                                    False):
            self._count_overflow(runner)
            return
        counts = self._counts(runner)
        total, consecutive = counts[self.TOTAL_KEY], counts[
            self.CONSECUTIVE_KEY]
        if bad_keys:
            what = (f'non-finite loss(es) {bad_keys} in branch(es) '
                    f'{self.branches(bad_keys)}')
        elif skipped:
            what = 'finite losses but non-finite gradients'
        else:
            what = None

        if what is not None and not can_skip:
            raise RuntimeError(
                f'NonFiniteLossHook: iteration {runner.iter + 1} has {what}, '
                f'and the optimizer wrapper {type(wrapper).__name__} cannot '
                'skip the update, so the weights are now corrupt. Training '
                'stops before any checkpoint of this state is written; the '
                'last good checkpoint is kept: '
                f'{self._last_checkpoint(runner)}. Use '
                "optim_wrapper=dict(type='NonFiniteSkipOptimWrapper', ...) "
                'to skip such steps.')

        if skipped:
            total += 1
            consecutive += 1
        elif what is None and self._stepped(wrapper):
            consecutive = 0
        self._set_counts(runner, total, consecutive)

        if what is not None:
            action = ('optimizer step skipped' if skipped else
                      'gradients accumulate until the next optimizer step, '
                      'which will be skipped')
            print_log(
                f'NonFiniteLossHook: iteration {runner.iter + 1}: {what}; '
                f'{action}. Bad steps: {consecutive} in a row '
                f'(limit {self.max_consecutive}), {total} in total.',
                logger='current',
                level=logging.WARNING)
        if consecutive >= self.max_consecutive:
            raise RuntimeError(
                f'NonFiniteLossHook: {consecutive} consecutive optimizer '
                'steps had non-finite losses or gradients (last at '
                f'iteration {runner.iter + 1}: {what}); stopping training. '
                'These steps were skipped, so the weights are those of the '
                'last good step, and no checkpoint is written for this '
                'iteration; the last good checkpoint is kept: '
                f'{self._last_checkpoint(runner)}. Lower the learning rate, '
                'enable clip_grad or check the data, then resume from it.')

    def _count_overflow(self, runner) -> None:
        """Count and log a step the AMP gradient scaler skipped."""
        hub = runner.message_hub
        overflows = int(hub.get_info(self.OVERFLOW_KEY) or 0) + 1
        hub.update_info(self.OVERFLOW_KEY, overflows)
        hub.update_scalar(f'train/{self.OVERFLOW_KEY}', overflows)
        print_log(
            f'NonFiniteLossHook: iteration {runner.iter + 1}: gradient '
            'overflow under AMP loss scaling; optimizer step skipped, loss '
            f'scale lowered to {runner.optim_wrapper.loss_scaler.get_scale()}'
            f' ({overflows} such steps in total).',
            logger='current',
            level=logging.INFO)

    @staticmethod
    def _stepped(wrapper) -> bool:
        """Whether the wrapper just made an optimizer step (not only
        accumulated gradients)."""
        inner = getattr(wrapper, '_inner_count', None)
        counts = getattr(wrapper, '_accumulative_counts', 1)
        if inner is None:
            return True
        max_counts = getattr(wrapper, '_max_counts', -1)
        return inner % counts == 0 or inner == max_counts
