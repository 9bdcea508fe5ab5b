from mmyolo.models.dense_heads import YOLOv5Head, YOLOv7Head

from mmssda.registry import TASK_UTILS

from .base_head_adapter import BaseHeadAdapter


@TASK_UTILS.register_module()
class ObjectnessHeadAdapter(BaseHeadAdapter):
    """Heads that score a prior by objectness x class: mmyolo's YOLOv5 and
    YOLOv7 heads.

    Outputs ``(cls_scores, bbox_preds, objectnesses)``, each level
    (N, A * C, H, W), (N, A * 4, H, W), (N, A, H, W); a prior's score is
    ``sigmoid(obj) * sigmoid(cls)``, as in their ``predict_by_feat``.
    Soft distillation distils the objectness on every prior and the class
    logits where the teacher is confident (:class:`YOLOSoftDistillLoss`).

    Example:
        >>> model = dict(type='SSDADetector',
        ...              head_adapter=dict(type='ObjectnessHeadAdapter'))
    """

    head_types = (YOLOv5Head, YOLOv7Head)
    family = 'objectness'
    has_objectness = True
