import torch.nn as nn
from mmengine.dist import get_world_size
from torch import Tensor

from mmssda.registry import MODELS


@MODELS.register_module()
class ConsistencyLoss(nn.Module):
    """Squared difference between the supervised losses of a real/fake pair.

    SSDA-YOLO asks the student to be equally good on a source image and on
    its translation to the target style: with ``L_sr`` and ``L_sf`` the total
    detection losses on source-real and source-fake,
    ``L_c = loss_weight / W * (L_sr - L_sf) ** 2`` on ``W`` processes.
    Gradients flow into both.

    Why ``/ W``: SSDA-YOLO squares the per-process losses ``l`` (each
    scaled by the per-process batch size) and multiplies the whole total
    by ``W`` once, for DDP's gradient averaging:
    ``W * (l_sr + l_sf + ... + alpha * (l_sr - l_sf) ** 2)``. mmyolo's
    YOLOv5 losses are already multiplied by ``batch_size * world_size``,
    i.e. ``L = W * l``, so ``alpha * (L_sr - L_sf) ** 2`` would be
    ``W ** 2 * alpha * (l_sr - l_sf) ** 2``: ``W`` times the original's
    weight. ``alpha / W * (L_sr - L_sf) ** 2 = W * alpha * (l_sr - l_sf) **
    2`` matches it at any number of GPUs.

    Args:
        loss_weight (float): The weight ``alpha``. Defaults to 2.0.

    Example:
        >>> # in a config
        >>> consistency_loss = dict(type='ConsistencyLoss', loss_weight=2.0)
    """

    def __init__(self, loss_weight: float = 2.0) -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(
                f'loss_weight must be non-negative, got {loss_weight}')
        self.loss_weight = loss_weight

    def forward(self, real_loss: Tensor, fake_loss: Tensor) -> Tensor:
        """Compute ``loss_weight / world_size * (real_loss - fake_loss) **
        2``.

        Args:
            real_loss (Tensor): Total loss on the real images, a scalar or a
                tensor of shape (1, ) (YOLOv5 heads return shape (1, )).
            fake_loss (Tensor): Total loss on the fake images, same shape.

        Returns:
            Tensor: The weighted squared difference, a scalar.
        """
        if real_loss.numel() != 1 or fake_loss.numel() != 1:
            raise ValueError('ConsistencyLoss compares two scalar totals, got '
                             f'shapes {tuple(real_loss.shape)} and '
                             f'{tuple(fake_loss.shape)}')
        weight = self.loss_weight / get_world_size()
        return weight * (real_loss.sum() - fake_loss.sum()).pow(2)
