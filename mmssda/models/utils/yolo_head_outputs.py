"""Raw outputs of mmyolo's YOLOv5 and YOLOv8 heads as dense score maps.

The teacher-side statistics and the soft distillation loss read the heads'
raw (pre-sigmoid) outputs prior by prior. Both flatten every level in the
order the heads' ``predict_by_feat`` uses (``permute(0, 2, 3, 1)``, then
levels concatenated), so index ``p`` of image ``n`` is the same prior in
the teacher's and in the student's maps when their images have one size.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmyolo.models.dense_heads import YOLOv5Head, YOLOv8Head
from torch import Tensor

#: ``head_kind`` of heads with an objectness branch (cls, bbox, obj).
OBJECTNESS = 'objectness'
#: ``head_kind`` of anchor-free heads scored by their class branch only.
CLASS_SCORES = 'class_scores'


def head_kind(head) -> Optional[str]:
    """How a head scores its priors, or None if it is not supported.

    Args:
        head (nn.Module): A detector's ``bbox_head``.

    Returns:
        str or None: :data:`OBJECTNESS` for mmyolo's ``YOLOv5Head`` (score
        = sigmoid(obj) * sigmoid(cls)), :data:`CLASS_SCORES` for its
        ``YOLOv8Head`` and subclasses (score = sigmoid(cls)), None for
        any other head.
    """
    if isinstance(head, YOLOv8Head):
        return CLASS_SCORES
    if type(head) is YOLOv5Head:
        return OBJECTNESS
    return None


def _flatten(maps: Sequence[Tensor], channels: int) -> Tensor:
    """(N, A * channels, H, W) per level -> (N, sum(H * W * A), channels)."""
    num_imgs = maps[0].shape[0]
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for m in maps
    ], 1)


def flatten_logits(head, outs: Sequence[List[Tensor]]
                   ) -> Tuple[Tensor, Optional[Tensor]]:
    """The class (and objectness) logits of every prior.

    Args:
        head (nn.Module): A YOLOv5 or YOLOv8 head (:func:`head_kind`).
        outs (tuple[list[Tensor]]): The head's forward outputs, train or
            eval mode: ``cls_scores`` first, each (N, A * C, H, W), and for
            YOLOv5 ``objectnesses`` third, each (N, A, H, W).

    Returns:
        tuple[Tensor, Tensor or None]: Class logits (N, P, C) and
        objectness logits (N, P), None for a head without objectness.
    """
    kind = head_kind(head)
    if kind is None:
        raise TypeError(f'{type(head).__name__} is not supported: only '
                        "mmyolo's YOLOv5Head and YOLOv8Head are")
    cls_logits = _flatten(outs[0], head.num_classes)
    if kind == CLASS_SCORES:
        return cls_logits, None
    return cls_logits, _flatten(outs[2], 1)[..., 0]


def prior_scores(head, outs: Sequence[List[Tensor]]) -> Tensor:
    """Detection score of every prior and class, as ``predict_by_feat``.

    Args:
        head (nn.Module): A YOLOv5 or YOLOv8 head.
        outs (tuple[list[Tensor]]): Its forward outputs.

    Returns:
        Tensor: (N, P, C) scores: sigmoid(obj) * sigmoid(cls) for YOLOv5,
        sigmoid(cls) for YOLOv8.
    """
    cls_logits, obj_logits = flatten_logits(head, outs)
    scores = cls_logits.sigmoid()
    if obj_logits is not None:
        scores = scores * obj_logits.sigmoid()[..., None]
    return scores
