from typing import Optional, Tuple

import torch
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
    Gradients flow into both (``pull='both'``, below).

    Why ``/ W``: SSDA-YOLO squares the per-process losses ``l`` (each
    scaled by the per-process batch size) and multiplies the whole total
    by ``W`` once, for DDP's gradient averaging:
    ``W * (l_sr + l_sf + ... + alpha * (l_sr - l_sf) ** 2)``. mmyolo's
    YOLOv5 losses are already multiplied by ``batch_size * world_size``,
    i.e. ``L = W * l``, so ``alpha * (L_sr - L_sf) ** 2`` would be
    ``W ** 2 * alpha * (l_sr - l_sf) ** 2``: ``W`` times the original's
    weight. ``alpha / W * (L_sr - L_sf) ** 2 = W * alpha * (l_sr - l_sf) **
    2`` matches it at any number of GPUs.

    Two options carry the term to detectors whose losses are not YOLOv5's
    (docs/detectors.md):

    - ``reference_loss``: the size of the per-stream losses that
      ``loss_weight`` was set for (YOLOv5's). The detection losses grow
      linearly with a head's loss scale ``k`` but the squared difference
      with ``k ** 2``, so the same ``alpha`` is ``k`` times stronger on a
      head with ``k`` times larger losses (YOLOv8's are about 30 times
      YOLOv5's). With ``reference_loss`` the term is
      ``alpha / W * (L_sr - L_sf) ** 2 * reference_loss / m``, ``m`` the
      detached per-process mean of ``L_sr`` and ``L_sf``
      (``(L_sr + L_sf) / (2 * W)``): its weight relative to the detection
      losses no longer depends on the head, nor on ``W``.
    - ``pull``: ``'both'`` (the paper): gradients flow into both totals, so
      the *smaller* loss is pushed up as much as the larger one is pulled
      down. Its net gradient weight is ``1 - 2 * alpha' * |L_sr - L_sf|``
      (``alpha'`` the effective weight above), negative once the gap is
      large: the student is then trained to get worse on the better
      stream. ``'worse'``: the smaller total is detached; only the larger
      one is pulled towards it. :meth:`stream_weights` gives both net
      weights (SSDADetector logs them).

    Args:
        loss_weight (float): The weight ``alpha``. Defaults to 2.0.
        reference_loss (float, optional): See above. Defaults to None (the
            paper's term).
        pull (str): ``'both'`` or ``'worse'``, see above. Defaults to
            ``'both'``.

    Example:
        >>> # in a config
        >>> consistency_loss = dict(type='ConsistencyLoss', loss_weight=2.0)
        >>> # on a head with larger losses than YOLOv5's
        >>> consistency_loss = dict(
        ...     type='ConsistencyLoss', loss_weight=2.0,
        ...     reference_loss=1.1, pull='worse')
    """

    def __init__(self,
                 loss_weight: float = 2.0,
                 reference_loss: Optional[float] = None,
                 pull: str = 'both') -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(
                f'loss_weight must be non-negative, got {loss_weight}')
        if reference_loss is not None and not reference_loss > 0:
            raise ValueError('reference_loss must be positive (or None), '
                             f'got {reference_loss}')
        if pull not in self.PULLS:
            raise ValueError(
                f'pull must be one of {self.PULLS}, got {pull!r}')
        self.loss_weight = loss_weight
        self.reference_loss = reference_loss
        self.pull = pull

    #: The values of ``pull``.
    PULLS = ('both', 'worse')

    def effective_weight(self, real_loss: Tensor,
                         fake_loss: Tensor) -> Tensor:
        """``alpha / W``, times ``reference_loss / m`` when set (``m`` the
        per-process mean of the two losses; a detached scalar tensor)."""
        world_size = get_world_size()
        weight = real_loss.new_tensor(self.loss_weight / world_size)
        if self.reference_loss is not None:
            # per process, as reference_loss: mmyolo's losses are W * l
            mean = (real_loss.detach().sum() +
                    fake_loss.detach().sum()) / (2 * world_size)
            weight = weight * self.reference_loss / mean.clamp(min=1e-12)
        return weight

    def forward(self, real_loss: Tensor, fake_loss: Tensor) -> Tensor:
        """Compute the weighted squared difference of the two totals.

        Args:
            real_loss (Tensor): Total loss on the real images, a scalar or a
                tensor of shape (1, ) (YOLOv5 heads return shape (1, )).
            fake_loss (Tensor): Total loss on the fake images, same shape.

        Returns:
            Tensor: ``effective_weight * (real_loss - fake_loss) ** 2``, a
            scalar; with ``pull='worse'`` the smaller total is detached.
        """
        if real_loss.numel() != 1 or fake_loss.numel() != 1:
            raise ValueError('ConsistencyLoss compares two scalar totals, got '
                             f'shapes {tuple(real_loss.shape)} and '
                             f'{tuple(fake_loss.shape)}')
        real, fake = real_loss.sum(), fake_loss.sum()
        if self.pull == 'worse':
            if real.detach() < fake.detach():
                real = real.detach()
            else:
                fake = fake.detach()
        weight = self.effective_weight(real_loss, fake_loss)
        return weight * (real - fake).pow(2)

    @torch.no_grad()
    def stream_weights(self, real_loss: Tensor,
                       fake_loss: Tensor) -> Tuple[Tensor, Tensor]:
        """The net weights of the source-real and source-fake losses'
        gradients in ``real_loss + fake_loss + forward(...)``: ``1 +
        d forward / d L``. Below 0 the student is trained to do worse on
        that stream.

        Returns:
            tuple[Tensor, Tensor]: ``(real_weight, fake_weight)``, scalars.
        """
        real, fake = real_loss.sum(), fake_loss.sum()
        slope = 2 * self.effective_weight(real_loss, fake_loss) * (
            real - fake)
        real_weight, fake_weight = 1 + slope, 1 - slope
        if self.pull == 'worse':
            if real < fake:
                real_weight = torch.ones_like(real_weight)
            else:
                fake_weight = torch.ones_like(fake_weight)
        return real_weight, fake_weight
