from typing import Dict, Optional

import torch.nn as nn
from mmdet.models.utils import reweight_loss_dict
from torch import Tensor

from mmssda.registry import MODELS


@MODELS.register_module()
class PseudoLabelDistillLoss(nn.Module):
    """Weighting of the student's detection loss against pseudo-labels.

    The student's detection loss on target-real images, with the teacher's
    pseudo-labels from the paired target-fake images as ground truth, is the
    distillation term ``L_d``; it enters the total as ``loss_weight * L_d``.
    ``term_weights`` additionally scales single terms of the head's loss
    dict, e.g. ``dict(loss_bbox=0.)`` to learn only classification and
    objectness from pseudo-labels whose boxes are too noisy to regress to.

    Args:
        loss_weight (float): The weight ``lambda`` of the whole term.
            Defaults to 0.005 (SSDA-YOLO).
        term_weights (dict[str, float], optional): Extra factor per loss
            name of the detector head (``loss_cls``, ``loss_obj``,
            ``loss_bbox`` for YOLOv5). Names not listed keep factor 1.
            Defaults to None.

    Example:
        >>> distill_loss = dict(
        ...     type='PseudoLabelDistillLoss', loss_weight=0.005,
        ...     term_weights=dict(loss_bbox=1.0))
    """

    def __init__(self,
                 loss_weight: float = 0.005,
                 term_weights: Optional[Dict[str, float]] = None) -> None:
        super().__init__()
        if loss_weight < 0:
            raise ValueError(
                f'loss_weight must be non-negative, got {loss_weight}')
        self.loss_weight = loss_weight
        self.term_weights = dict(term_weights or {})

    def forward(self, pseudo_label_losses: Dict[str, Tensor]) -> dict:
        """Weight the student's losses on pseudo-labelled images.

        Args:
            pseudo_label_losses (dict[str, Tensor]): The loss dict of the
                student's head on target-real images with pseudo-labels as
                ``gt_instances``, e.g. ``{'loss_cls': Tensor(1, ),
                'loss_obj': Tensor(1, ), 'loss_bbox': Tensor(1, )}``.

        Returns:
            dict[str, Tensor]: The same keys, each multiplied by
            ``loss_weight`` and its ``term_weights`` factor.
        """
        unknown = set(self.term_weights) - set(pseudo_label_losses)
        if unknown:
            raise KeyError(f'term_weights names {sorted(unknown)}, which the '
                           'head does not return; it returns '
                           f'{sorted(pseudo_label_losses)}')
        weighted = dict(pseudo_label_losses)
        for name, factor in self.term_weights.items():
            weighted.update(reweight_loss_dict({name: weighted[name]}, factor))
        return reweight_loss_dict(weighted, self.loss_weight)
