import math

import torch
import torch.nn as nn
from mmyolo.models.layers import ExpMomentumEMA

from mmssda.registry import MODELS


@MODELS.register_module()
class ForeachExpMomentumEMA(ExpMomentumEMA):
    """mmyolo's :class:`ExpMomentumEMA` with one fused update per step.

    The same average as the parent (YOLOv5's ramped momentum
    ``(1 - momentum) * exp(-(1 + steps) / gamma) + momentum``, floating
    point entries only, integer buffers left as at the first update), but
    the update is a single ``torch._foreach_lerp_`` over all averaged
    tensors instead of one ``lerp_`` call per tensor. The state dict is the
    parent's, so checkpoints are interchangeable.

    Args:
        model (nn.Module): The model to be averaged.
        **kwargs: :class:`mmyolo.models.layers.ExpMomentumEMA` arguments
            (``momentum``, ``gamma``, ``interval``, ``device``,
            ``update_buffers``).

    Example:
        >>> custom_hooks = [dict(type='StudentEMAHook',
        ...                      ema_type='ForeachExpMomentumEMA')]
    """

    def update_parameters(self, model: nn.Module) -> None:
        """Update the average after a training step.

        Args:
            model (nn.Module): The averaged model (its tensors were bound
                at construction, as in the parent).
        """
        if self.steps == 0:
            super().update_parameters(model)
            return
        if self.steps % self.interval == 0:
            averaged, source = [], []
            for key, p_avg in self.avg_parameters.items():
                if p_avg.dtype.is_floating_point:
                    averaged.append(p_avg.data)
                    source.append(self.src_parameters[key].data)
            momentum = (1 - self.momentum) * math.exp(
                -float(1 + self.steps) / self.gamma) + self.momentum
            with torch.no_grad():
                torch._foreach_lerp_(averaged, source, momentum)
        if not self.update_buffers:
            for b_avg, b_src in zip(self.module.buffers(), self.src_buffers):
                b_avg.data.copy_(b_src.data)
        self.steps += 1
