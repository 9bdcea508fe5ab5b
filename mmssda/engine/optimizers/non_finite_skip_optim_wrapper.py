import logging
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper

from mmssda.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipOptimWrapper(OptimWrapper):
    """An :class:`OptimWrapper` that skips optimizer steps whose loss or
    gradients are NaN or Inf.

    :meth:`update_params` always runs ``backward`` (so DDP's gradient
    all-reduce stays in step across ranks), then, at each optimizer step
    (after ``accumulative_counts`` backward passes), checks the losses of the
    accumulation window and every gradient. The decision is agreed across
    ranks (one ``all_reduce`` of a flag when distributed), so either all
    ranks step or none does. A skipped step zeroes the gradients and does not
    call ``optimizer.step()``: the weights, the optimizer state and any
    EMA/mean-teacher that follows the optimizer (hooks read
    :attr:`skipped_last_step`) keep their last good values.
    :class:`NonFiniteLossHook` reports and counts the skipped steps and stops
    training after too many in a row.

    Attributes:
        skipped_last_step (bool): Whether the most recent
            :meth:`update_params` call was an optimizer step that was
            skipped. False on iterations that only accumulate gradients.
        num_skipped_steps (int): Skipped steps since the wrapper was built.

    Args:
        optimizer (Optimizer): The optimizer.
        accumulative_counts (int): Gradient accumulation steps. Defaults
            to 1.
        clip_grad (dict, optional): Gradient clipping config, as in
            :class:`OptimWrapper`. Defaults to None.

    Example:
        >>> optim_wrapper = dict(
        ...     type='NonFiniteSkipOptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.937,
        ...                    nesterov=True, weight_decay=5e-4),
        ...     clip_grad=dict(max_norm=10.0))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.skipped_last_step = False
        self.num_skipped_steps = 0
        self._window_loss_finite = True

    def _grads_finite(self) -> bool:
        """Whether every gradient of the optimizer's parameters is finite."""
        grads = [
            p.grad for group in self.optimizer.param_groups
            for p in group['params'] if p.grad is not None
        ]
        if not grads:
            return True
        return bool(
            torch.stack([torch.isfinite(g).all() for g in grads]).all())

    def _all_ranks_finite(self, finite: bool) -> bool:
        """Agree across ranks: finite only if finite everywhere."""
        if get_world_size() == 1:
            return finite
        device = next(
            (p.device for group in self.optimizer.param_groups
             for p in group['params']), torch.device('cpu'))
        flag = torch.tensor([0.0 if finite else 1.0], device=device)
        all_reduce(flag, op='sum')
        return bool(flag.item() == 0)

    def update_params(  # type: ignore
            self,
            loss: torch.Tensor,
            step_kwargs: Optional[Dict] = None,
            zero_kwargs: Optional[Dict] = None) -> None:
        """Backward, then step unless a loss or gradient is non-finite.

        Args:
            loss (torch.Tensor): The loss of the current iteration.
            step_kwargs (dict, optional): Arguments for ``optimizer.step``.
            zero_kwargs (dict, optional): Arguments for
                ``optimizer.zero_grad``.
        """
        step_kwargs = step_kwargs or {}
        zero_kwargs = zero_kwargs or {}
        self._window_loss_finite &= bool(torch.isfinite(loss.detach()).all())
        loss = self.scale_loss(loss)
        self.backward(loss)
        self.skipped_last_step = False
        if not self.should_update():
            return
        finite = self._all_ranks_finite(self._window_loss_finite
                                        and self._grads_finite())
        self._window_loss_finite = True
        if finite:
            self.step(**step_kwargs)
        else:
            self.skipped_last_step = True
            self.num_skipped_steps += 1
            print_log(
                'NonFiniteSkipOptimWrapper: non-finite loss or gradient, '
                f'optimizer step skipped ({self.num_skipped_steps} so far).',
                logger='current',
                level=logging.DEBUG)
        self.zero_grad(**zero_kwargs)


def optimizer_stepped(optim_wrapper: OptimWrapper) -> bool:
    """Whether the last iteration changed the weights.

    False on iterations that only accumulated gradients and on steps that
    :class:`NonFiniteSkipOptimWrapper` skipped; hooks that average the
    weights (mean teacher, EMA) update only when this is True.
    """
    return optim_wrapper.should_update() and not getattr(
        optim_wrapper, 'skipped_last_step', False)
