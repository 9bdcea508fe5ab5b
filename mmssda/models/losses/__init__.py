from .consistency_loss import ConsistencyLoss
from .pseudo_label_distill_loss import PseudoLabelDistillLoss

__all__ = ['ConsistencyLoss', 'PseudoLabelDistillLoss']
