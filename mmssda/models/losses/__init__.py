from .consistency_loss import ConsistencyLoss
from .pseudo_label_distill_loss import PseudoLabelDistillLoss
from .yolo_soft_distill_loss import YOLOSoftDistillLoss, soft_bce

__all__ = [
    'ConsistencyLoss', 'PseudoLabelDistillLoss', 'YOLOSoftDistillLoss',
    'soft_bce'
]
