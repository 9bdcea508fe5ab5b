from mmdet.models.dense_heads import RetinaHead
from mmyolo.models.dense_heads import RTMDetHead, YOLOv8Head

from mmssda.registry import TASK_UTILS

from .base_head_adapter import BaseHeadAdapter


@TASK_UTILS.register_module()
class ClassScoreHeadAdapter(BaseHeadAdapter):
    """Heads that score a prior by its class logits only: mmyolo's YOLOv8
    and RTMDet heads, mmdet's RetinaNet head.

    ``cls_scores`` (the first output) are (N, A * C, H, W) per level and a
    prior's score is ``sigmoid(cls)``, as in their ``predict_by_feat``.
    There is no objectness: soft distillation distils the class logits on
    every prior (:class:`YOLOSoftDistillLoss`), and an ``obj_weight`` is
    refused.

    Example:
        >>> model = dict(type='SSDADetector',
        ...              head_adapter=dict(type='ClassScoreHeadAdapter'))
    """

    head_types = (YOLOv8Head, RTMDetHead, RetinaHead)
    family = 'class_scores'
