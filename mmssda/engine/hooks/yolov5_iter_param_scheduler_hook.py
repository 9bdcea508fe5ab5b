import math
from typing import Callable, Optional

import numpy as np
from mmengine.hooks import ParamSchedulerHook
from mmengine.runner import Runner

from mmssda.engine.optimizers import optimizer_stepped
from mmssda.registry import HOOKS


def linear_fn(lr_factor: float, max_iters: int) -> Callable[[int], float]:
    """Linear decay from 1 to ``lr_factor`` over ``max_iters``."""
    return lambda x: (1 - x / max_iters) * (1.0 - lr_factor) + lr_factor


def cosine_fn(lr_factor: float, max_iters: int) -> Callable[[int], float]:
    """YOLOv5's one-cycle cosine from 1 to ``lr_factor`` over ``max_iters``.
    """
    return lambda x: (
        (1 - math.cos(x * math.pi / max_iters)) / 2) * (lr_factor - 1) + 1


@HOOKS.register_module()
class YOLOv5IterParamSchedulerHook(ParamSchedulerHook):
    """YOLOv5's learning-rate and momentum schedule, by iteration.

    mmyolo's ``YOLOv5ParamSchedulerHook`` is epoch-based; an infinite
    multi-domain sampler has no epochs. For iteration ``i`` and the
    optimizer groups of ``YOLOv5OptimizerConstructor`` (0: weights with
    decay, 1: norm weights, 2: biases):

    - warmup (``i <= warmup_iters``): the bias lr falls linearly from
      ``warmup_bias_lr``, the other lrs rise from 0, to ``lr0 * f(i)``;
      momentum rises from ``warmup_momentum`` to its configured value;
    - afterwards ``lr = lr0 * f(i)``, ``f`` falling from 1 at ``i=0`` to
      ``lr_factor`` at ``max_iters`` (cosine one-cycle or linear).

    ``i`` counts the iterations whose optimizer step was taken: an
    accumulation window whose step was skipped (non-finite loss or gradient,
    or the AMP gradient scaler's overflow skip; see
    :func:`optimizer_stepped`) does not advance the schedule, like it does
    not advance the mean teacher or the student-EMA. Without skipped steps
    ``i`` is ``runner.iter``. The count of skipped iterations is saved in
    the checkpoint's ``meta`` and restored on resume.

    Args:
        scheduler_type (str): ``'cosine'`` or ``'linear'``.
            Defaults to ``'cosine'``.
        lr_factor (float): Final lr as a fraction of the initial lr
            (YOLOv5's ``lrf``). Defaults to 0.2.
        warmup_iters (int): Warmup length. Defaults to 1000.
        warmup_bias_lr (float): Bias lr at iteration 0. Defaults to 0.1.
        warmup_momentum (float): Momentum at iteration 0. Defaults to 0.8.
        max_iters (int, optional): Schedule length; ``runner.max_iters`` if
            None. Defaults to None.

    Example:
        >>> default_hooks = dict(param_scheduler=dict(
        ...     type='YOLOv5IterParamSchedulerHook', scheduler_type='cosine',
        ...     lr_factor=0.2, warmup_iters=1000))
    """
    priority = 9

    scheduler_maps = {'linear': linear_fn, 'cosine': cosine_fn}

    def __init__(self,
                 scheduler_type: str = 'cosine',
                 lr_factor: float = 0.2,
                 warmup_iters: int = 1000,
                 warmup_bias_lr: float = 0.1,
                 warmup_momentum: float = 0.8,
                 max_iters: Optional[int] = None) -> None:
        if scheduler_type not in self.scheduler_maps:
            raise ValueError(f'scheduler_type must be one of '
                             f'{sorted(self.scheduler_maps)}, got '
                             f'{scheduler_type!r}')
        self.scheduler_type = scheduler_type
        self.lr_factor = lr_factor
        self.warmup_iters = warmup_iters
        self.warmup_bias_lr = warmup_bias_lr
        self.warmup_momentum = warmup_momentum
        self.max_iters = max_iters
        self.scheduler_fn = None
        self._base_lr = None
        self._base_momentum = None
        #: Iterations of skipped optimizer steps: the schedule stays behind
        #: ``runner.iter`` by this many.
        self.skipped_iters = 0
        self._window_iters = 0

    def before_train(self, runner: Runner) -> None:
        """Record the initial lrs and momenta; fix the schedule length."""
        optimizer = runner.optim_wrapper.optimizer
        for group in optimizer.param_groups:
            group.setdefault('initial_lr', group['lr'])
            group.setdefault('initial_momentum', group.get('momentum', -1))
        self._base_lr = [g['initial_lr'] for g in optimizer.param_groups]
        self._base_momentum = [
            g['initial_momentum'] for g in optimizer.param_groups
        ]
        max_iters = self.max_iters or runner.max_iters
        self.scheduler_fn = self.scheduler_maps[self.scheduler_type](
            self.lr_factor, max_iters)

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Set the lr (and, during warmup, momentum) of this iteration."""
        cur_iter = runner.iter - self.skipped_iters
        for group_idx, group in enumerate(
                runner.optim_wrapper.optimizer.param_groups):
            group['lr'] = self.get_lr(group_idx, cur_iter)
            if 'momentum' in group:
                group['momentum'] = self.get_momentum(group_idx, cur_iter)

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Hold the schedule back by the iterations of a skipped step (and
        step the runner's own ``param_scheduler``s, if any, as the parent
        does)."""
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        wrapper = runner.optim_wrapper
        self._window_iters += 1
        if not wrapper.should_update():
            return
        if not optimizer_stepped(wrapper):
            self.skipped_iters += self._window_iters
        self._window_iters = 0

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Save the count of skipped iterations."""
        checkpoint.setdefault('meta', dict())['yolov5_param_scheduler'] = \
            dict(skipped_iters=self.skipped_iters)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Restore the count of skipped iterations when resuming."""
        state = checkpoint.get('meta', dict()).get('yolov5_param_scheduler')
        if runner._resume and state is not None:
            self.skipped_iters = state['skipped_iters']

    def get_lr(self, group_idx: int, cur_iter: int) -> float:
        """The lr of a parameter group at an iteration.

        Args:
            group_idx (int): Index of the optimizer's parameter group.
            cur_iter (int): Iteration, from 0.

        Returns:
            float: The learning rate.
        """
        lr = self._base_lr[group_idx] * self.scheduler_fn(cur_iter)
        if cur_iter > self.warmup_iters:
            return lr
        start = self.warmup_bias_lr if group_idx == 2 else 0.
        return float(np.interp(cur_iter, [0, self.warmup_iters], [start, lr]))

    def get_momentum(self, group_idx: int, cur_iter: int) -> float:
        """The momentum of a parameter group at an iteration.

        Args:
            group_idx (int): Index of the optimizer's parameter group.
            cur_iter (int): Iteration, from 0.

        Returns:
            float: The momentum.
        """
        momentum = self._base_momentum[group_idx]
        if cur_iter > self.warmup_iters:
            return momentum
        return float(
            np.interp(cur_iter, [0, self.warmup_iters],
                      [self.warmup_momentum, momentum]))
