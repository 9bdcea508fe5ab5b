"""What :class:`SSDADetector` needs from a detection head, in one place.

A head adapter is a small stateless object, registered in ``TASK_UTILS``,
that knows one *head family*: how the head's raw outputs score its priors
(soft distillation, the ``distill.teacher_score_p*`` statistics), how the
teacher's pseudo-labels are post-processed with
``semi_train_cfg.pseudo_label_cfg`` instead of the head's ``test_cfg``,
and in which form the head's loss takes its labels. :class:`SSDADetector`
picks the adapter by the head's class (the most specific class of the
head's MRO that an adapter names in :attr:`BaseHeadAdapter.head_types`),
or takes the one named by ``model.head_adapter``.
"""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmssda.registry import TASK_UTILS


def flatten_maps(maps: Sequence[Tensor], channels: int) -> Tensor:
    """(N, A * channels, H, W) per level -> (N, sum(H * W * A), channels).

    The order of mmyolo's and mmdet's ``predict_by_feat`` (``permute(0, 2,
    3, 1)``, then levels concatenated), so index ``p`` of image ``n`` is
    the same prior in the teacher's and in the student's maps when their
    images have one size.
    """
    num_imgs = maps[0].shape[0]
    return torch.cat([
        m.permute(0, 2, 3, 1).reshape(num_imgs, -1, channels) for m in maps
    ], 1)


@TASK_UTILS.register_module()
class BaseHeadAdapter:
    """Interface between :class:`SSDADetector` and one head family.

    A subclass sets the class attributes and overrides what its family
    does differently; the defaults fit a dense (single-stage) head whose
    ``predict_by_feat`` takes a ``cfg`` and whose ``loss`` takes a list of
    :obj:`DetDataSample`.

    Attributes:
        head_types (tuple[type]): The head classes this adapter is chosen
            for (subclasses included, unless a more specific adapter names
            them).
        family (str): A short name of the score layout, used in messages
            and in docs/detectors.md: ``'objectness'`` (score =
            sigmoid(obj) * sigmoid(cls)), ``'class_scores'`` (sigmoid(cls)),
            ``'class_centerness'`` (sigmoid(cls) * sigmoid(centerness)),
            ``'two_stage'`` (no dense outputs).
        has_dense_outputs (bool): Whether the head's raw outputs are
            per-prior score maps (soft distillation needs them).
        has_objectness (bool): Whether the head has an objectness branch
            (third output).

    Example:
        >>> # a new head family is one file like this one, plus a config
        >>> @TASK_UTILS.register_module()
        >>> class MyHeadAdapter(ClassScoreHeadAdapter):
        ...     head_types = (MyHead, )
        >>> # picked automatically for MyHead, or named in the config:
        >>> model = dict(type='SSDADetector',
        ...              head_adapter=dict(type='MyHeadAdapter'))
    """

    head_types: Tuple[type, ...] = ()
    family = 'base'
    has_dense_outputs = True
    has_objectness = False

    # ------------------------------------------------------------ structure
    def head(self, detector: nn.Module) -> nn.Module:
        """The head whose classes and outputs the adapter reads.

        Args:
            detector (nn.Module): The student or the teacher.

        Returns:
            nn.Module: ``detector.bbox_head`` for dense detectors.
        """
        return detector.bbox_head

    def head_name(self, detector: nn.Module) -> str:
        """The head's class name, for messages."""
        return type(self.head(detector)).__name__

    def num_classes(self, detector: nn.Module) -> int:
        """The number of object classes the detector predicts."""
        return self.head(detector).num_classes

    def check(self, detector: nn.Module, semi_train_cfg: ConfigDict) -> None:
        """Refuse settings this family cannot honour (raise ValueError).

        Args:
            detector (nn.Module): The student.
            semi_train_cfg (:obj:`ConfigDict`): The wrapper's settings.
        """

    def before_loss(self, detector: nn.Module,
                    semi_train_cfg: ConfigDict) -> None:
        """Called by :meth:`SSDADetector.loss` before any head loss."""

    # --------------------------------------------------------------- scores
    def flatten_logits(self, head: nn.Module, outs: Sequence[List[Tensor]]
                       ) -> Tuple[Tensor, Optional[Tensor]]:
        """The class (and objectness) logits of every prior.

        Args:
            head (nn.Module): The head.
            outs (tuple[list[Tensor]]): Its forward outputs (train or eval
                mode); ``cls_scores`` first, each (N, A * C, H, W).

        Returns:
            tuple[Tensor, Tensor or None]: Class logits (N, P, C) and
            objectness logits (N, P), None without objectness.
        """
        if not self.has_dense_outputs:
            raise TypeError(f'{type(self).__name__}: {type(head).__name__} '
                            'has no dense score maps')
        cls_logits = flatten_maps(outs[0], head.num_classes)
        if not self.has_objectness:
            return cls_logits, None
        return cls_logits, flatten_maps(outs[2], 1)[..., 0]

    def prior_scores(self, head: nn.Module,
                     outs: Sequence[List[Tensor]]) -> Tensor:
        """Detection score of every prior and class, as ``predict_by_feat``.

        Returns:
            Tensor: (N, P, C) scores.
        """
        cls_logits, obj_logits = self.flatten_logits(head, outs)
        scores = cls_logits.sigmoid()
        if obj_logits is not None:
            scores = scores * obj_logits.sigmoid()[..., None]
        return scores

    def top_scores(self, head: nn.Module,
                   outs: Sequence[List[Tensor]]) -> Tensor:
        """Each image's highest prior score before any threshold, (N, )."""
        return self.prior_scores(head, outs).flatten(1).max(1).values

    # --------------------------------------------------------- pseudo-labels
    def predict_pseudo_labels(
            self, detector: nn.Module, batch_inputs: Tensor,
            batch_img_metas: List[dict], cfg: ConfigDict
    ) -> Tuple[List[InstanceData], Optional[tuple], Optional[Tensor]]:
        """The teacher's detections post-processed with ``cfg``.

        Args:
            detector (nn.Module): The teacher, in eval mode.
            batch_inputs (Tensor): Images (N, C, H, W).
            batch_img_metas (list[dict]): Metas in input-image coordinates
                (``scale_factor`` 1, no padding offset).
            cfg (:obj:`ConfigDict`): The post-processing config
                (``semi_train_cfg.pseudo_label_cfg``, possibly adjusted).

        Returns:
            tuple: The results per image (``bboxes`` (K, 4), ``labels``
            (K, ), ``scores`` (K, ), input-image coordinates), the head's
            raw outputs (float32; None without dense outputs) and each
            image's top score before any threshold (N, ) or None.
        """
        head = self.head(detector)
        outs = head(detector.extract_feat(batch_inputs))
        # under AMP autocast: post-process (NMS) in float32
        outs = tuple([o.float() if isinstance(o, Tensor) else o
                      for o in level] for level in outs)
        top = self.top_scores(head, outs)
        results = head.predict_by_feat(
            *outs, batch_img_metas=batch_img_metas, cfg=cfg, rescale=False)
        return results, outs, top

    # ----------------------------------------------------------------- loss
    def pack_data_samples(self, batch_data_samples: SampleList):
        """The labels in the form the head's ``loss`` takes.

        Args:
            batch_data_samples (list[:obj:`DetDataSample`]): Samples with
                ``gt_instances``.

        Returns:
            The samples themselves for most heads.
        """
        return batch_data_samples

    def loss(self,
             detector: nn.Module,
             batch_inputs: Tensor,
             batch_data_samples: SampleList,
             feats: Optional[Tuple[Tensor]] = None) -> dict:
        """The detector's supervised loss, from its features if given.

        Args:
            detector (nn.Module): The student.
            batch_inputs (Tensor): Images (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Labels.
            feats (tuple[Tensor], optional): ``detector.extract_feat`` of
                ``batch_inputs``. Defaults to None.

        Returns:
            dict[str, Tensor or list[Tensor]]: The detector's losses.
        """
        packed = self.pack_data_samples(batch_data_samples)
        if feats is None:
            return detector.loss(batch_inputs, packed)
        return self.head(detector).loss(feats, packed)

    def loss_by_feat(self, head: nn.Module, outs: Sequence[List[Tensor]],
                     batch_gt_instances: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> dict:
        """``head.loss_by_feat`` on per-image labels (soft distillation's
        box terms)."""
        return head.loss_by_feat(*outs, list(batch_gt_instances),
                                 list(batch_img_metas))


def _adapter_types() -> List[type]:
    """Every registered adapter class (mmssda's TASK_UTILS)."""
    return [
        cls for cls in TASK_UTILS.module_dict.values()
        if isinstance(cls, type) and issubclass(cls, BaseHeadAdapter)
    ]


def build_head_adapter(detector: nn.Module,
                       cfg: Optional[dict] = None) -> BaseHeadAdapter:
    """The adapter named by ``cfg``, else the one for the detector's head.

    A two-stage detector (with ``rpn_head`` and ``roi_head``) gets the
    adapter that names its class; a dense detector the one that names
    the most specific class in its ``bbox_head``'s MRO (so YOLOXHead,
    a subclass of YOLOv5Head, gets the YOLOX adapter if there is one, and
    YOLOv5's otherwise).

    Args:
        detector (nn.Module): The built student.
        cfg (dict, optional): ``model.head_adapter``, e.g.
            ``dict(type='ClassScoreHeadAdapter')``. Defaults to None.

    Returns:
        :obj:`BaseHeadAdapter`: The adapter.

    Raises:
        TypeError: No adapter names the head (or the detector).
    """
    if cfg is not None:
        adapter = TASK_UTILS.build(copy.deepcopy(cfg))
        if not isinstance(adapter, BaseHeadAdapter):
            raise TypeError('model.head_adapter must build a '
                            f'BaseHeadAdapter, got {type(adapter).__name__}')
        return adapter
    part = detector if hasattr(detector, 'roi_head') else getattr(
        detector, 'bbox_head', None)
    if part is None:
        raise TypeError(f'SSDADetector: {type(detector).__name__} has '
                        'neither a bbox_head nor an roi_head')
    candidates = _adapter_types()
    for klass in type(part).__mro__:
        for adapter in candidates:
            if klass in adapter.head_types:
                return adapter()
    known = sorted({t.__name__ for a in candidates for t in a.head_types})
    raise TypeError(
        f'SSDADetector has no head adapter for {type(part).__name__}: '
        f'adapters exist for {known}. Name one whose score layout fits '
        "with model.head_adapter=dict(type='...HeadAdapter') or add one "
        '(docs/detectors.md)')
