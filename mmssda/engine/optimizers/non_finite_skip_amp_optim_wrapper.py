from typing import Dict, Union

import torch
from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_musa_available, is_npu_available)
from mmengine.optim import AmpOptimWrapper

from mmssda.engine.optimizers.non_finite_skip_optim_wrapper import \
    NonFiniteSkipOptimWrapper
from mmssda.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipAmpOptimWrapper(NonFiniteSkipOptimWrapper,
                                   AmpOptimWrapper):
    """:class:`NonFiniteSkipOptimWrapper` with automatic mixed precision
    (mmengine's :class:`AmpOptimWrapper`): what ``tools/train.py --amp``
    makes of ``NonFiniteSkipOptimWrapper``.

    The forward runs under ``autocast(dtype)``; the skipping, its agreement
    across ranks and the buffer restore are
    :class:`NonFiniteSkipOptimWrapper`'s (this class only adds the scaler
    case, through the method resolution order
    ``NonFiniteSkipAmpOptimWrapper -> NonFiniteSkipOptimWrapper ->
    AmpOptimWrapper -> OptimWrapper``).

    - With loss scaling (float16 on a GPU; mmengine's ``loss_scale``), inf or
      NaN gradients are the gradient scaler's business: it skips the step
      and lowers the scale, as YOLOv5 does. Non-finite losses are still
      checked here and skip the step without touching the scaler. A step the
      scaler skipped is detected from the optimizer itself (a step
      post-hook records whether ``optimizer.step()`` ran, whatever the kind
      of scaler: dynamic or static) and is a skipped step like any other:
      :attr:`skipped_last_step` and :attr:`scaler_skipped_last_step` are
      True, the buffers are restored, and the mean teacher, the student-EMA
      and the lr schedule do not count it (:func:`optimizer_stepped`).
      Under DDP the gradients are all-reduced before the scaler looks at
      them, so every rank's scaler decides alike.
    - Without a GPU (mmengine's :class:`AmpOptimWrapper` asserts one) it
      autocasts to bfloat16 on the CPU. bfloat16 has float32's exponent
      range, so no loss scaling is needed: the scaler is a disabled
      ``torch.amp.GradScaler`` (its ``scale``, ``unscale_``, ``step`` and
      ``update`` pass through) and gradients are checked as in
      :class:`NonFiniteSkipOptimWrapper`. ``dtype`` must then be None or
      ``'bfloat16'``; ``loss_scale`` is not used.

    Args:
        loss_scale (float | str | dict): The gradient scaler's
            configuration, as in :class:`AmpOptimWrapper`. Defaults to
            ``'dynamic'``.
        dtype (str | torch.dtype, optional): The autocast dtype; None is
            float16 on a GPU and bfloat16 on the CPU. Defaults to None.
        use_fsdp (bool): Use ``ShardedGradScaler`` (GPU). Defaults to False.
        **kwargs: Arguments of :class:`OptimWrapper` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).

    Example:
        >>> optim_wrapper = dict(
        ...     type='NonFiniteSkipAmpOptimWrapper',
        ...     loss_scale='dynamic',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.937,
        ...                    nesterov=True, weight_decay=5e-4))
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 **kwargs) -> None:
        if (is_cuda_available() or is_npu_available() or is_mlu_available()
                or is_musa_available()):
            super().__init__(
                loss_scale=loss_scale,
                dtype=dtype,
                use_fsdp=use_fsdp,
                **kwargs)
        else:
            if dtype not in (None, 'bfloat16', torch.bfloat16):
                raise ValueError(
                    'NonFiniteSkipAmpOptimWrapper: without a GPU only '
                    'bfloat16 autocast is available (CPU), got '
                    f'optim_wrapper.dtype={dtype!r}; set it to '
                    "'bfloat16' or None.")
            # AmpOptimWrapper.__init__ asserts an accelerator: run its
            # parent's and set what it sets
            super(AmpOptimWrapper, self).__init__(**kwargs)
            self._init_skip_state()
            self._scale_update_param = None
            self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
            self.cast_dtype = torch.bfloat16
        self._optimizer_step_ran = False
        self.optimizer.register_step_post_hook(self._record_step)

    def _record_step(self, optimizer, args, kwargs) -> None:
        """Optimizer step post-hook: the step really ran."""
        self._optimizer_step_ran = True

    def load_state_dict(self, state_dict: dict) -> None:
        """Load the optimizer's and the scaler's state; an empty scaler state
        (saved without loss scaling: CPU bfloat16) leaves the scaler as
        built."""
        if state_dict.get('loss_scaler', None) == {}:
            state_dict.pop('loss_scaler')
        super().load_state_dict(state_dict)

    def _step_if_finite(self, step_kwargs: Dict) -> bool:
        """Without loss scaling, as :class:`NonFiniteSkipOptimWrapper`.
        With it, skip on a non-finite loss (on some rank); otherwise let
        :meth:`AmpOptimWrapper.step` unscale, clip, step (unless the scaler
        finds inf/NaN gradients) and update the scale.

        Returns:
            bool: Whether ``optimizer.step()`` ran.
        """
        if not self.loss_scaler.is_enabled():
            return super()._step_if_finite(step_kwargs)
        if not self._all_ranks_finite(self._window_loss_finite):
            return False
        self._optimizer_step_ran = False
        self.step(**step_kwargs)
        self.scaler_skipped_last_step = not self._optimizer_step_ran
        return self._optimizer_step_ran
