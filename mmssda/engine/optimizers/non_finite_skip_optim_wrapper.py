import logging
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from torch import Tensor

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
    :attr:`skipped_last_step` through :func:`optimizer_stepped`) keep their
    last good values. :class:`NonFiniteLossHook` reports and counts the
    skipped steps and stops training after too many in a row.

    The forward pass of a bad step has already written its batch statistics
    into the model's buffers (BatchNorm running mean/var): NaN for a NaN
    batch. :meth:`optim_context`, inside which MMEngine's ``train_step`` runs
    the forward, therefore copies the buffers of the model's modules in
    training mode (the student; the teacher runs in eval mode) at the start
    of each accumulation window, and a skipped step puts them back, so that
    no bad statistic reaches the teacher or the student-EMA either. The copy
    is of the buffers only (YOLOv5-s: 19k numbers, 0.3% of the parameters).

    Attributes:
        skipped_last_step (bool): Whether the most recent
            :meth:`update_params` call was an optimizer step that was
            skipped. False on iterations that only accumulate gradients.
        scaler_skipped_last_step (bool): Whether that skip was the gradient
            scaler's (AMP with loss scaling: finite losses, inf/NaN scaled
            gradients; the scaler lowered the scale). Always False here; see
            :class:`NonFiniteSkipAmpOptimWrapper`.
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
        self._init_skip_state()

    def _init_skip_state(self) -> None:
        """Counters and flags of the skipping (set once, at build)."""
        self.skipped_last_step = False
        self.scaler_skipped_last_step = False
        self.num_skipped_steps = 0
        self._window_loss_finite = True
        #: (live buffers, their copies) at the start of the window
        self._buffer_snapshot: Optional[Tuple[List[Tensor],
                                              List[Tensor]]] = None

    @contextmanager
    def optim_context(self, model: nn.Module):
        """The parent's context (no gradient sync while accumulating,
        autocast for AMP), after copying the buffers the forward may change
        when this is the first forward of an accumulation window.

        Args:
            model (nn.Module): The training model.
        """
        if self._buffer_snapshot is None:
            self._buffer_snapshot = self._snapshot_buffers(model)
        with super().optim_context(model):
            yield

    @staticmethod
    def _snapshot_buffers(
            model: nn.Module) -> Tuple[List[Tensor], List[Tensor]]:
        """The buffers of the modules in training mode and their copies."""
        live = [
            buf for module in model.modules() if module.training
            for buf in module.buffers(recurse=False)
        ]
        with torch.no_grad():
            return live, [buf.detach().clone() for buf in live]

    def _restore_buffers(self) -> None:
        """Put back the buffers copied at the start of the window."""
        if self._buffer_snapshot is None:
            return
        with torch.no_grad():
            for live, saved in zip(*self._buffer_snapshot):
                live.copy_(saved)

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

    def _step_if_finite(self, step_kwargs: Dict) -> bool:
        """Step unless a loss of the window or a gradient is non-finite on
        some rank.

        Returns:
            bool: Whether ``optimizer.step()`` ran.
        """
        finite = self._all_ranks_finite(self._window_loss_finite
                                        and self._grads_finite())
        if finite:
            self.step(**step_kwargs)
        return finite

    def update_params(  # type: ignore
            self,
            loss: torch.Tensor,
            step_kwargs: Optional[Dict] = None,
            zero_kwargs: Optional[Dict] = None) -> None:
        """Backward, then step unless a loss or gradient is non-finite.

        A skipped step also restores the buffers copied by
        :meth:`optim_context` at the start of the window.

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
        self.scaler_skipped_last_step = False
        if not self.should_update():
            return
        stepped = self._step_if_finite(step_kwargs)
        self._window_loss_finite = True
        if not stepped:
            self._restore_buffers()
            self.skipped_last_step = True
            self.num_skipped_steps += 1
            print_log(
                f'{type(self).__name__}: non-finite loss or gradient, '
                f'optimizer step skipped ({self.num_skipped_steps} so far).',
                logger='current',
                level=logging.DEBUG)
        self._buffer_snapshot = None
        self.zero_grad(**zero_kwargs)


def optimizer_stepped(optim_wrapper: OptimWrapper) -> bool:
    """Whether the last iteration changed the weights.

    False on iterations that only accumulated gradients and on steps that
    :class:`NonFiniteSkipOptimWrapper` (or its AMP variant, whose gradient
    scaler may skip a step too) skipped; hooks that average the weights (mean
    teacher, EMA) or follow the optimizer steps (the lr schedule) count only
    iterations where this is True.
    """
    return optim_wrapper.should_update() and not getattr(
        optim_wrapper, 'skipped_last_step', False)
