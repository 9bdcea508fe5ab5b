from .yolo_head_outputs import (CLASS_SCORES, OBJECTNESS, flatten_logits,
                                head_kind, prior_scores)

__all__ = [
    'CLASS_SCORES', 'OBJECTNESS', 'flatten_logits', 'head_kind',
    'prior_scores'
]
