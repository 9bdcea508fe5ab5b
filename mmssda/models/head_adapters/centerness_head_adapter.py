from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
from mmdet.models.dense_heads import FCOSHead
from torch import Tensor

from mmssda.registry import TASK_UTILS

from .base_head_adapter import BaseHeadAdapter, flatten_maps


@TASK_UTILS.register_module()
class CenternessHeadAdapter(BaseHeadAdapter):
    """Heads that score a prior by class x centerness: mmdet's FCOS head.

    Outputs ``(cls_scores, bbox_preds, centernesses)``, each level
    (N, C, H, W), (N, 4, H, W), (N, 1, H, W); ``predict_by_feat`` scores
    a prior ``sigmoid(cls) * sigmoid(centerness)``, and so do the
    teacher-score statistics. Soft distillation
    (:class:`YOLOSoftDistillLoss`) is not defined for this layout and is
    refused when the model is built; hard pseudo-labels work.

    Example:
        >>> model = dict(type='SSDADetector',
        ...              head_adapter=dict(type='CenternessHeadAdapter'))
    """

    head_types = (FCOSHead, )
    family = 'class_centerness'

    def flatten_logits(self, head: nn.Module, outs: Sequence[List[Tensor]]
                       ) -> Tuple[Tensor, Optional[Tensor]]:
        """Class logits (N, P, C) and centerness logits (N, P)."""
        return (flatten_maps(outs[0], head.num_classes),
                flatten_maps(outs[2], 1)[..., 0])
