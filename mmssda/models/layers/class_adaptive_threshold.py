from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.dist import all_reduce
from mmengine.structures import InstanceData
from torch import Tensor

from mmssda.registry import MODELS


@MODELS.register_module()
class ClassAdaptiveThreshold(nn.Module):
    """Per-class pseudo-label score thresholds that follow the teacher.

    One threshold per class, kept in the buffer :attr:`thresholds` (so it
    is saved in checkpoints and restored on resume with the model). After
    each teacher prediction during training (:meth:`update`), for every
    class ``c`` the batch statistic

    ``s_c = mean over the images with a class-c candidate of the image's
    highest class-c score``

    (candidates: the teacher's detections after NMS with score >=
    ``floor``) moves the threshold by an EMA,

    ``thr_c <- clip((1 - momentum) * thr_c + momentum * s_c, floor,
    ceiling)``;

    a class without candidates in the batch keeps its threshold. A teacher
    that is unsure of a class (best scores 0.3) thus lowers that class's
    threshold towards where its best boxes lie, and a confident one raises
    it, so that roughly the better half of each class's best boxes become
    pseudo-labels whatever the teacher's calibration; ``floor`` and
    ``ceiling`` bound it. In distributed training the per-class sums and
    counts are summed over all ranks first, so every rank keeps the same
    thresholds.

    :class:`SSDADetector` runs the head's ``predict_by_feat`` with
    ``score_thr=floor`` and then keeps the boxes with ``score >=
    thr[label]`` (:meth:`filter`).

    Args:
        num_classes (int): Number of classes. :class:`SSDADetector` fills
            it from the head.
        floor (float): Lowest threshold, also the candidates' score
            threshold. Must be > 0. Defaults to 0.1.
        ceiling (float): Highest threshold. Defaults to 0.9.
        momentum (float): EMA weight of the batch statistic. Defaults to
            0.01.
        init (float, optional): Starting threshold of every class, within
            [floor, ceiling]. None starts at 0.5 clipped to [floor,
            ceiling]; :class:`SSDADetector` then starts it at
            ``semi_train_cfg.pseudo_label_cfg.score_thr``, clipped.
            Defaults to None.

    Example:
        >>> model = dict(
        ...     type='SSDADetector',
        ...     adaptive_score_thr=dict(
        ...         type='ClassAdaptiveThreshold', floor=0.1, ceiling=0.9,
        ...         momentum=0.01))
    """

    def __init__(self,
                 num_classes: int,
                 floor: float = 0.1,
                 ceiling: float = 0.9,
                 momentum: float = 0.01,
                 init: Optional[float] = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        if not 0 < floor <= ceiling <= 1:
            raise ValueError('adaptive_score_thr needs 0 < floor <= ceiling '
                             f'<= 1, got floor={floor}, ceiling={ceiling}')
        if not 0 <= momentum <= 1:
            raise ValueError(
                f'adaptive_score_thr.momentum must be in [0, 1], got '
                f'{momentum}')
        if init is not None and not floor <= init <= ceiling:
            raise ValueError(f'adaptive_score_thr.init={init} is outside '
                             f'[floor, ceiling] = [{floor}, {ceiling}]')
        self.num_classes = num_classes
        self.floor = floor
        self.ceiling = ceiling
        self.momentum = momentum
        self.register_buffer('thresholds', torch.empty(num_classes))
        self.reset(0.5 if init is None else init)

    @torch.no_grad()
    def reset(self, value: float) -> None:
        """Set every class's threshold to ``value`` clipped to [floor,
        ceiling]."""
        self.thresholds.fill_(min(max(float(value), self.floor),
                                  self.ceiling))

    @torch.no_grad()
    def batch_statistic(self, results: Sequence[InstanceData]) -> Tensor:
        """Per-class sums and counts of the images' top candidate scores.

        Args:
            results (list[:obj:`InstanceData`]): The teacher's detections
                per image with ``scores`` (K, ) >= ``floor`` and
                ``labels`` (K, ).

        Returns:
            Tensor: (num_classes, 2): the sum over images of each image's
            highest score of the class, and the number of images with a
            candidate of the class.
        """
        device = self.thresholds.device
        top = torch.zeros(len(results), self.num_classes, device=device)
        for i, res in enumerate(results):
            top[i].scatter_reduce_(0, res.labels.long().to(device),
                                   res.scores.float().to(device), 'amax')
        present = (top > 0).float()
        return torch.stack([top.sum(0), present.sum(0)], 1)

    @torch.no_grad()
    def update(self, results: Sequence[InstanceData]) -> None:
        """Move the thresholds towards this batch's statistic.

        Args:
            results (list[:obj:`InstanceData`]): See
                :meth:`batch_statistic`.
        """
        stat = self.batch_statistic(results)
        all_reduce(stat)  # a no-op outside distributed training
        total, count = stat.unbind(1)
        target = total / count.clamp(min=1)
        updated = ((1 - self.momentum) * self.thresholds +
                   self.momentum * target).clamp(self.floor, self.ceiling)
        self.thresholds.copy_(torch.where(count > 0, updated,
                                          self.thresholds))

    def filter(self, results: InstanceData, max_per_img: int) -> InstanceData:
        """Keep the detections above their class's threshold.

        Args:
            results (:obj:`InstanceData`): Detections of one image sorted
                by descending score (as the heads' NMS returns them).
            max_per_img (int): The most detections kept.

        Returns:
            :obj:`InstanceData`: The kept detections, at most
            ``max_per_img``, still sorted.
        """
        thresholds = self.thresholds.to(results.scores.device)
        keep = results.scores >= thresholds[results.labels.long()]
        return results[keep][:max_per_img]
