from typing import Dict, List, Sequence

import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmengine.structures import InstanceData
from torch import Tensor

from mmssda.models.utils import (CLASS_SCORES, flatten_logits, head_kind,
                                 prior_scores)
from mmssda.registry import MODELS


def soft_bce(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Binary cross-entropy with the teacher's sigmoid as soft target,
    minus the target's entropy: the Bernoulli KL divergence
    ``KL(sigmoid(t) || sigmoid(s))``, element-wise.

    Its gradient is that of the plain soft-target BCE (the entropy does
    not depend on the student), and it is 0 exactly where the student's
    logits equal the teacher's.

    Args:
        student_logits (Tensor): Any shape.
        teacher_logits (Tensor): Same shape; no gradient flows into it.

    Returns:
        Tensor: Element-wise divergence, same shape, >= 0.
    """
    teacher_logits = teacher_logits.detach()
    target = teacher_logits.sigmoid()
    return (F.binary_cross_entropy_with_logits(
        student_logits, target, reduction='none') -
            F.binary_cross_entropy_with_logits(
                teacher_logits, target, reduction='none'))


@MODELS.register_module()
class YOLOSoftDistillLoss(nn.Module):
    """Soft distillation of a YOLO teacher's dense outputs into the student.

    Selected by ``distill_loss=dict(type='YOLOSoftDistillLoss', ...)`` in
    :class:`SSDADetector`. The teacher's raw head outputs on target-fake
    images and the student's on the paired target-real images are compared
    prior by prior. That is sound because a pair went through identical
    geometric augmentation (``PairedTransform``, ``PairedMosaic``): the two
    images have one size, so the heads' feature maps have one shape, and
    cell ``(y, x)`` of a level sees the same scene region in both. The loss
    checks the shapes and raises otherwise.

    Terms (``D(s, t)`` is :func:`soft_bce`, the soft-target BCE minus the
    target's entropy, zero when the student's logit equals the teacher's):

    - YOLOv5 (``YOLOv5Head``):

      - ``loss_obj``: ``D`` of the objectness on every prior of every
        image; per level the mean, times the head's ``obj_level_weights``,
        summed (YOLOv5's own objectness normalisation), times
        ``head.loss_obj.loss_weight``.
      - ``loss_cls``: ``D`` of the class logits, on the priors where the
        teacher is confident (score sigmoid(obj) * max sigmoid(cls) >=
        ``conf_thr``), mean over those priors and classes, times
        ``head.loss_cls.loss_weight``; 0 when no prior is confident.

    - YOLOv8 (``YOLOv8Head``, no objectness): ``loss_cls``: ``D`` of the
      class logits on every prior (the class scores play the objectness's
      part), summed and divided by the teacher's score sum (at least 1:
      YOLOv8's own normalisation by the assigned scores' sum), times
      ``head.loss_cls.loss_weight``.
    - Boxes, both heads: the head's own box terms (``loss_bbox``, and
      ``loss_dfl`` for YOLOv8) of ``head.loss_by_feat`` against the hard
      pseudo-labels, i.e. the teacher's confident boxes only.

    Like mmyolo's losses every term is multiplied by the number of images
    and the world size, and then by ``loss_weight`` and its term weight.
    The returned keys are those of the head's hard-label loss, so logs and
    hooks read the same names.

    Args:
        loss_weight (float): Weight of the whole term (``lambda``).
            Defaults to 0.005 (SSDA-YOLO's weight of its distillation).
        obj_weight (float): Factor of ``loss_obj`` (YOLOv5). Defaults to
            1.0.
        cls_weight (float): Factor of ``loss_cls``. Defaults to 1.0.
        bbox_weight (float): Factor of the box terms. Defaults to 1.0.
        conf_thr (float): Teacher score from which a YOLOv5 prior's class
            scores are distilled. Defaults to 0.5.

    Example:
        >>> model = dict(
        ...     type='SSDADetector',
        ...     distill_loss=dict(
        ...         type='YOLOSoftDistillLoss', loss_weight=0.05,
        ...         obj_weight=1.0, cls_weight=1.0, bbox_weight=1.0,
        ...         conf_thr=0.5))
    """

    #: :class:`SSDADetector` passes this loss the raw head outputs of
    #: student and teacher (see :meth:`forward`) instead of the student's
    #: hard-label loss dict.
    uses_head_outputs = True

    def __init__(self,
                 loss_weight: float = 0.005,
                 obj_weight: float = 1.0,
                 cls_weight: float = 1.0,
                 bbox_weight: float = 1.0,
                 conf_thr: float = 0.5) -> None:
        super().__init__()
        weights = dict(
            loss_weight=loss_weight,
            obj_weight=obj_weight,
            cls_weight=cls_weight,
            bbox_weight=bbox_weight)
        for name, value in weights.items():
            if value < 0:
                raise ValueError(f'distill_loss.{name} must be non-negative, '
                                 f'got {value}')
        if not 0 <= conf_thr <= 1:
            raise ValueError(
                f'distill_loss.conf_thr must be in [0, 1], got {conf_thr}')
        self.loss_weight = loss_weight
        self.obj_weight = obj_weight
        self.cls_weight = cls_weight
        self.bbox_weight = bbox_weight
        self.conf_thr = conf_thr

    def forward(self, head: nn.Module,
                student_outs: Sequence[List[Tensor]],
                teacher_outs: Sequence[List[Tensor]],
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Sequence[dict]) -> Dict[str, Tensor]:
        """Compute the soft distillation terms.

        Args:
            head (nn.Module): The student's ``bbox_head`` (a YOLOv5Head or
                YOLOv8Head).
            student_outs (tuple[list[Tensor]]): The student head's
                train-mode outputs on target-real, e.g. YOLOv5
                ``(cls_scores, bbox_preds, objectnesses)``, each level
                (N, A * C, H, W), (N, A * 4, H, W), (N, A, H, W).
            teacher_outs (tuple[list[Tensor]]): The teacher head's outputs
                on the paired target-fake images (eval mode: YOLOv8 has no
                ``bbox_dist_preds`` there); the same levels and shapes.
            batch_gt_instances (list[:obj:`InstanceData`]): The hard
                pseudo-labels per image (``bboxes``, ``labels``).
            batch_img_metas (list[dict]): The target-real image metas.

        Returns:
            dict[str, Tensor]: YOLOv5 ``loss_cls``, ``loss_obj``,
            ``loss_bbox``; YOLOv8 ``loss_cls``, ``loss_bbox``, ``loss_dfl``.
        """
        kind = head_kind(head)
        if kind is None:
            raise TypeError(
                'distill_loss=YOLOSoftDistillLoss supports mmyolo\'s '
                f'YOLOv5Head and YOLOv8Head, got {type(head).__name__}')
        student_shapes = [tuple(x.shape) for x in student_outs[0]]
        teacher_shapes = [tuple(x.shape) for x in teacher_outs[0]]
        if student_shapes != teacher_shapes:
            raise ValueError(
                'YOLOSoftDistillLoss compares teacher and student prior by '
                'prior and needs target_real and target_fake images of one '
                f'size: class maps {student_shapes} (student) vs '
                f'{teacher_shapes} (teacher)')
        num_imgs = student_outs[0][0].shape[0]
        _, world_size = get_dist_info()
        scale = num_imgs * world_size * self.loss_weight
        if kind == CLASS_SCORES:
            soft = self._class_score_terms(head, student_outs, teacher_outs)
        else:
            soft = self._objectness_terms(head, student_outs, teacher_outs)
        hard = head.loss_by_feat(*student_outs, batch_gt_instances,
                                 batch_img_metas)
        losses = {name: value * scale for name, value in soft.items()}
        for name in ('loss_bbox', 'loss_dfl'):
            if name in hard:
                losses[name] = hard[name] * (self.bbox_weight *
                                             self.loss_weight)
        return losses

    def _objectness_terms(self, head, student_outs,
                          teacher_outs) -> Dict[str, Tensor]:
        """YOLOv5: objectness on every prior, classes where confident."""
        loss_obj = student_outs[2][0].new_zeros(())
        for level, (s_obj, t_obj) in enumerate(
                zip(student_outs[2], teacher_outs[2])):
            loss_obj = loss_obj + soft_bce(s_obj, t_obj).mean() * \
                head.obj_level_weights[level]
        s_cls, _ = flatten_logits(head, student_outs)
        t_cls, _ = flatten_logits(head, teacher_outs)
        confident = prior_scores(head, teacher_outs).max(-1).values >= \
            self.conf_thr
        mask = confident[..., None].to(s_cls.dtype)
        # masked mean without a host sync; 0 (with a graph) if none
        loss_cls = (soft_bce(s_cls, t_cls) * mask).sum() / (
            mask.sum() * head.num_classes).clamp(min=1)
        return dict(
            loss_cls=loss_cls * head.loss_cls.loss_weight * self.cls_weight,
            loss_obj=loss_obj * head.loss_obj.loss_weight * self.obj_weight)

    def _class_score_terms(self, head, student_outs,
                           teacher_outs) -> Dict[str, Tensor]:
        """YOLOv8: class scores on every prior, per teacher score sum."""
        s_cls, _ = flatten_logits(head, student_outs)
        t_cls, _ = flatten_logits(head, teacher_outs)
        norm = t_cls.detach().sigmoid().sum().clamp(min=1)
        loss_cls = soft_bce(s_cls, t_cls).sum() / norm
        return dict(
            loss_cls=loss_cls * head.loss_cls.loss_weight * self.cls_weight)
