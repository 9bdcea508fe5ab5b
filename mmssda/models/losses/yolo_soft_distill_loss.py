from typing import Dict, List, Optional, Sequence

import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_dist_info
from mmengine.structures import InstanceData
from torch import Tensor

from mmssda.models.head_adapters import BaseHeadAdapter, build_head_adapter
from mmssda.registry import MODELS

#: The head families (:attr:`BaseHeadAdapter.family`) the loss is defined
#: for.
SUPPORTED_FAMILIES = ('objectness', 'class_scores')


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

    The terms follow the head family of the head adapter
    (``mmssda/models/head_adapters``, see docs/detectors.md):

    - objectness x class (YOLOv5, YOLOv7, YOLOX):

      - ``loss_obj``: ``D`` of the objectness on every prior of every
        image; per level the mean, times the head's ``obj_level_weights``,
        summed (YOLOv5's own objectness normalisation; a head without
        ``obj_level_weights``, YOLOX, takes the mean over all priors),
        times ``head.loss_obj.loss_weight``.
      - ``loss_cls``: ``D`` of the class logits, on the priors where the
        teacher is confident (score sigmoid(obj) * max sigmoid(cls) >=
        ``conf_thr``), mean over those priors and classes, times
        ``head.loss_cls.loss_weight``; 0 when no prior is confident.

    - class scores only (YOLOv8, RTMDet, YOLOv6, PPYOLOE, RetinaNet):
      ``loss_cls``: ``D`` of the class logits on every prior (the class
      scores play the objectness's part), summed and divided by the
      teacher's score sum (at least 1: YOLOv8's own normalisation by the
      assigned scores' sum), times ``head.loss_cls.loss_weight``.
    - Boxes, every head: the head's own box terms (``loss_bbox``, and
      ``loss_dfl``, ``loss_bbox_aux`` where the head has them) of
      ``head.loss_by_feat`` against the hard pseudo-labels, i.e. the
      teacher's confident boxes only (a list of per-level values, as
      RetinaNet's, is summed).

    Other families (FCOS's class x centerness, two-stage detectors) are
    refused by :meth:`check_adapter` when the model is built, and so is
    an ``obj_weight`` for a head without objectness.

    Like mmyolo's losses every term is multiplied by the number of images
    and the world size, and then by ``loss_weight`` and its term weight.
    The returned keys are those of the head's hard-label loss, so logs and
    hooks read the same names.

    Args:
        loss_weight (float): Weight of the whole term (``lambda``).
            Defaults to 0.005 (SSDA-YOLO's weight of its distillation).
        obj_weight (float, optional): Factor of ``loss_obj`` (heads with
            objectness). None: 1.0 on those heads; a value on a head
            without objectness is refused. Defaults to None.
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
                 obj_weight: Optional[float] = None,
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
            if value is not None and value < 0:
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

    def check_adapter(self, adapter: BaseHeadAdapter, head_name: str) -> None:
        """Refuse a head family the loss is not defined for.

        Args:
            adapter (:obj:`BaseHeadAdapter`): The model's head adapter.
            head_name (str): The head's name, for the message.

        Raises:
            ValueError: Soft distillation does not apply to the head, or
                ``obj_weight`` is set for a head without objectness.
        """
        if adapter.family not in SUPPORTED_FAMILIES:
            raise ValueError(
                'distill_loss=YOLOSoftDistillLoss (soft distillation) is not '
                f'available for {head_name}: its head family '
                f'{adapter.family!r} ({type(adapter).__name__}) has no '
                f'dense score layout the loss is defined for '
                f'{SUPPORTED_FAMILIES}; use PseudoLabelDistillLoss')
        if self.obj_weight is not None and not adapter.has_objectness:
            raise ValueError(
                'distill_loss.obj_weight (soft objectness distillation) is '
                f'set, but {head_name} has no objectness; remove it')

    def forward(self,
                head: nn.Module,
                student_outs: Sequence[List[Tensor]],
                teacher_outs: Sequence[List[Tensor]],
                batch_gt_instances: Sequence[InstanceData],
                batch_img_metas: Sequence[dict],
                adapter: Optional[BaseHeadAdapter] = None
                ) -> Dict[str, Tensor]:
        """Compute the soft distillation terms.

        Args:
            head (nn.Module): The student's ``bbox_head``.
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
            adapter (:obj:`BaseHeadAdapter`, optional): The head's adapter
                (:class:`SSDADetector` passes its own); None: the one
                :func:`build_head_adapter` picks for ``head``'s class.

        Returns:
            dict[str, Tensor]: Objectness heads ``loss_cls``, ``loss_obj``
            and the box terms; class-score heads ``loss_cls`` and the box
            terms (YOLOv8: ``loss_bbox``, ``loss_dfl``).
        """
        if adapter is None:
            adapter = build_head_adapter(_HeadOnly(head))
        self.check_adapter(adapter, type(head).__name__)
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
        if adapter.has_objectness:
            soft = self._objectness_terms(adapter, head, student_outs,
                                          teacher_outs)
        else:
            soft = self._class_score_terms(adapter, head, student_outs,
                                           teacher_outs)
        hard = adapter.loss_by_feat(head, student_outs, batch_gt_instances,
                                    batch_img_metas)
        losses = {name: value * scale for name, value in soft.items()}
        for name in ('loss_bbox', 'loss_dfl', 'loss_bbox_aux'):
            if name in hard:
                value = hard[name]
                if isinstance(value, (list, tuple)):
                    value = sum(v.sum() for v in value)
                losses[name] = value * (self.bbox_weight * self.loss_weight)
        return losses

    def _objectness_terms(self, adapter, head, student_outs,
                          teacher_outs) -> Dict[str, Tensor]:
        """Objectness on every prior, classes where confident."""
        level_weights = getattr(head, 'obj_level_weights', None)
        if level_weights is None:
            s_obj = adapter.flatten_logits(head, student_outs)[1]
            t_obj = adapter.flatten_logits(head, teacher_outs)[1]
            loss_obj = soft_bce(s_obj, t_obj).mean()
        else:
            loss_obj = student_outs[2][0].new_zeros(())
            for level, (s_obj, t_obj) in enumerate(
                    zip(student_outs[2], teacher_outs[2])):
                loss_obj = loss_obj + soft_bce(s_obj, t_obj).mean() * \
                    level_weights[level]
        s_cls, _ = adapter.flatten_logits(head, student_outs)
        t_cls, _ = adapter.flatten_logits(head, teacher_outs)
        confident = adapter.prior_scores(head, teacher_outs).max(
            -1).values >= self.conf_thr
        mask = confident[..., None].to(s_cls.dtype)
        # masked mean without a host sync; 0 (with a graph) if none
        loss_cls = (soft_bce(s_cls, t_cls) * mask).sum() / (
            mask.sum() * head.num_classes).clamp(min=1)
        return dict(
            loss_cls=loss_cls * head.loss_cls.loss_weight * self.cls_weight,
            loss_obj=loss_obj * head.loss_obj.loss_weight *
            (1.0 if self.obj_weight is None else self.obj_weight))

    def _class_score_terms(self, adapter, head, student_outs,
                           teacher_outs) -> Dict[str, Tensor]:
        """Class scores on every prior, per teacher score sum."""
        s_cls, _ = adapter.flatten_logits(head, student_outs)
        t_cls, _ = adapter.flatten_logits(head, teacher_outs)
        norm = t_cls.detach().sigmoid().sum().clamp(min=1)
        loss_cls = soft_bce(s_cls, t_cls).sum() / norm
        return dict(
            loss_cls=loss_cls * head.loss_cls.loss_weight * self.cls_weight)


class _HeadOnly:
    """A stand-in detector holding only ``bbox_head`` (adapter lookup)."""

    def __init__(self, head: nn.Module) -> None:
        self.bbox_head = head
