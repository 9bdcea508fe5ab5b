import copy
import logging
import re
from contextlib import contextmanager, nullcontext
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmdet.models.detectors import SemiBaseDetector
from mmdet.models.utils import rename_loss_dict, reweight_loss_dict
from mmdet.structures import DetDataSample, SampleList
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmssda.models.head_adapters import build_head_adapter
from mmssda.registry import MODELS
from mmssda.utils.config_checks import HEAD_TEST_CFG_KEYS, check_option_keys

#: The four input streams of a batch (see docs/design.md).
STREAMS = ('source_real', 'source_fake', 'target_real', 'target_fake')
#: ``semi_train_cfg.empty_pseudo_policy`` values.
EMPTY_PSEUDO_POLICIES = ('background', 'ignore')
#: ``semi_train_cfg.teacher_bn_stats`` values.
TEACHER_BN_STATS = ('student', 'target')
#: ``semi_train_cfg.student_bn_stats`` values.
STUDENT_BN_STATS = ('all', 'target')


def _bn_layers(module: torch.nn.Module) -> List[_BatchNorm]:
    """The BatchNorm layers of ``module`` that keep running statistics."""
    return [
        m for m in module.modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats
    ]


@MODELS.register_module()
class SSDADetector(SemiBaseDetector):
    """Semi-supervised domain-adaptive teacher-student detector.

    Implements the training objective of `SSDA-YOLO: Semi-supervised Domain
    Adaptive YOLO for Cross-Domain Object Detection
    <https://arxiv.org/abs/2211.02213>`_ (Zhou et al., CVIU 2023) around
    a detector that mmyolo or mmdet builds: mmyolo's YOLOv5, YOLOv6,
    YOLOv7, YOLOv8, YOLOX, RTMDet and PPYOLOE, mmdet's RetinaNet, FCOS and
    Faster R-CNN (an mmdet detector dict needs ``_scope_='mmdet'``). What
    the wrapper needs from the head (its score layout, the pseudo-label
    post-processing, the form of its labels) goes through a head adapter
    (``mmssda/models/head_adapters``, docs/detectors.md), picked by the
    head's class or named by ``head_adapter``; a part that does not apply
    to the head is refused when the model is built. A student and a
    teacher are built from ``detector``; per iteration

    - ``L_sr``, ``L_sf``: the student's detection loss on ``source_real`` and
      ``source_fake`` (the source image translated to the target style) with
      the source labels;
    - ``L_d``: the teacher, in eval mode and without gradients, predicts on
      ``target_fake``; its boxes after ``semi_train_cfg.pseudo_label_cfg``
      (score 0.5, NMS IoU 0.3, at most 20, multi-label) are the labels of the
      student's detection loss on the paired ``target_real`` images. No
      box is ever invented: an image without pseudo-labels contributes
      only its background (objectness) term, or nothing
      (``semi_train_cfg.empty_pseudo_policy``). Optionally the thresholds
      are per class and follow the teacher (``adaptive_score_thr``), and
      the student matches the teacher's dense outputs instead of hard
      boxes (``distill_loss=dict(type='YOLOSoftDistillLoss')``);
    - ``L_c = alpha * (L_sr - L_sf) ** 2`` (:class:`ConsistencyLoss`);
    - total ``= L_sr + L_sf + lambda * L_d + L_c``.

    The teacher is updated by :class:`SSDAMeanTeacherHook`, which also owns
    the burn-in switch :attr:`distill_active`. Loss keys name the branch:
    ``source_real.loss_cls``, ``source_fake.loss_obj``, ``distill.loss_bbox``,
    ``consistency.loss``.

    Logged statistics (keys without ``loss``: logged every iteration in
    which distillation runs, never summed into the loss; hooks read them
    as ``runner.message_hub.get_scalar('train/<key>')``). These names are
    stable:

    - ``distill.num_pseudo``: pseudo-boxes per image (batch mean).
    - ``distill.num_pseudo_<class>``: pseudo-boxes of one class per image;
      ``<class>`` is the class name (``semi_train_cfg.class_names``, else
      ``dataset_meta['classes']`` if the model has one; characters other
      than letters, digits, ``_`` and ``-`` become ``_``) or, without
      names or for a name containing ``loss``, the class index.
    - ``distill.frac_with_pseudo``: fraction of the images with at least
      one pseudo-box.
    - ``distill.teacher_score_p50``, ``_p90``, ``_p99`` (one key per entry
      of ``semi_train_cfg.score_quantiles``; ``p`` + percent, ``%g``
      formatted): quantiles over the batch of each target-fake image's
      top teacher score before any threshold, as the head adapter scores
      it: from the raw outputs for dense heads (objectness heads: max of
      sigmoid(obj) * sigmoid(cls); class-score heads: max sigmoid(cls);
      FCOS: max sigmoid(cls) * sigmoid(centerness)), the top detection
      score for two-stage detectors.
    - ``distill.score_thr_<class>``: the current per-class threshold, with
      ``adaptive_score_thr`` only.
    - ``distill.pseudo_precision`` (when there are pseudo-boxes) and
      ``distill.pseudo_recall``, only when the target samples carry
      analysis labels: class-aware greedy matching at
      ``semi_train_cfg.analysis_iou_thr``.

    All are computed on the device and copied to the host in one
    transfer; the returned values are CPU tensors.

    Args:
        detector (:obj:`ConfigDict` or dict): The detector config the
            student and the teacher are built from (mmdet's with
            ``_scope_='mmdet'``).
        distill_loss (:obj:`ConfigDict` or dict, optional): Config of the
            distillation loss: :class:`PseudoLabelDistillLoss` weights the
            student's hard-label loss against the pseudo-labels (the
            paper); a loss with ``uses_head_outputs = True`` such as
            :class:`YOLOSoftDistillLoss` is called with the student's and
            the teacher's raw head outputs and the pseudo-labels instead.
            None disables distillation, and with it the teacher's forward
            pass (source-only and oracle baselines).
            Defaults to ``dict(type='PseudoLabelDistillLoss',
            loss_weight=0.005)``.
        consistency_loss (:obj:`ConfigDict` or dict, optional): Config of
            the real/fake consistency loss. None disables it. Needs both
            ``source_real`` and ``source_fake`` in ``supervised_streams``.
            Defaults to ``dict(type='ConsistencyLoss', loss_weight=2.0)``.
        semi_train_cfg (:obj:`ConfigDict` or dict, optional): Training
            settings, merged into the defaults:

            - ``freeze_teacher`` (bool): teacher params get
              ``requires_grad=False``. Defaults to True.
            - ``supervised_streams`` (Sequence[str]): the streams trained
              with their own labels. Defaults to
              ``('source_real', 'source_fake')``; ``('source_real', )`` for
              a source-only baseline.
            - ``pseudo_label_cfg`` (dict): the head's post-processing config
              for pseudo-labels, kept apart from the detector's
              ``test_cfg``. Defaults to ``dict(multi_label=True,
              nms_pre=30000, score_thr=0.5, nms=dict(type='nms',
              iou_threshold=0.3), max_per_img=20)``.
            - ``empty_pseudo_policy`` (str): what a target image without
              pseudo-labels contributes to the distillation loss.
              ``'background'`` (the paper): it stays in the batch, so its
              priors are all trained towards "no object" (YOLOv5's
              objectness, YOLOv8's class scores). ``'ignore'``: nothing;
              the loss is computed on the images that have pseudo-labels
              only, as the head computes it for a batch of that size
              (mmyolo's losses are batch means times the batch size, so
              the term is what those K images contribute, not rescaled to
              the full batch); with no such image the distillation losses
              are zeros that keep the graph. Applies to every
              ``distill_loss`` type. Defaults to ``'background'``.
            - ``class_names`` (Sequence[str], optional): names for the
              per-class statistics keys. Defaults to None
              (``dataset_meta['classes']`` if set, else indices).
            - ``score_quantiles`` (Sequence[float]): quantiles of the
              teacher's per-image top score to log. Defaults to
              ``(0.5, 0.9, 0.99)``.
            - ``analysis_iou_thr`` (float): IoU at which pseudo-labels are
              matched to the target's analysis labels for the logged
              precision/recall. Defaults to 0.5.
            - ``iters_per_epoch`` (int, optional): iterations per "epoch"
              for heads whose assigner switches at an epoch (YOLOv6,
              PPYOLOE: :class:`EpochSwitchHeadAdapter` sets the
              MessageHub's ``epoch`` to ``iter // iters_per_epoch``);
              required for them, unused otherwise. Defaults to None.
            - ``fused_student_forward`` (bool): run the student's backbone
              and neck once on the concatenation of its streams
              (``supervised_streams`` and, when distilling,
              ``target_real``) and split the features back, so every loss
              keeps its per-stream meaning. Faster on small batches, but
              BatchNorm (train mode) then normalises with the joint
              statistics of all streams and updates its running
              statistics once per iteration, not once per stream. With
              BatchNorm in eval mode (or without BatchNorm) the losses
              are those of the per-stream passes. Defaults to False.
            - ``teacher_bn_stats`` (str): the BatchNorm statistics the
              teacher labels with. ``'student'``: the running statistics
              the mean-teacher update averages from the student, which
              sees source and target batches. ``'target'``: the teacher's
              BatchNorm layers normalise each target-fake batch it labels
              with that batch's statistics and keep running statistics of
              those batches only (the layer's momentum), which it also
              validates with; :class:`SSDAMeanTeacherHook` then averages
              the teacher's weights but not these buffers. Needs
              BatchNorm in the detector. Defaults to ``'student'``.
            - ``student_bn_stats`` (str): the batches the student's
              BatchNorm layers keep running statistics of, which it (and
              its EMA, and a teacher with ``teacher_bn_stats='student'``)
              validates, tests and is exported with. ``'all'``: every
              batch it trains on, source and target. ``'target'``:
              target-real batches only; the supervised streams are still
              normalised with their own batch statistics (the same
              losses), but leave the running statistics as they are, and
              while the student does not train on target-real (burn-in,
              no ``distill_loss``) one forward pass without gradients on
              target-real updates them (AdaBN, Li et al. 2016). Needs
              BatchNorm in the detector and ``fused_student_forward``
              False. Defaults to ``'all'``.
            - ``distill_warmup_iters`` (int): the distillation losses
              ramp linearly from ``1 / N`` of their weight at the first
              step of distillation to their full weight at step ``N``
              (steps counted by :class:`SSDAMeanTeacherHook` into
              :attr:`distill_steps`); 0 trains at full weight from the
              first step. Defaults to 0.
        adaptive_score_thr (:obj:`ConfigDict` or dict, optional): Config
            of per-class pseudo-label thresholds that follow the teacher
            (:class:`ClassAdaptiveThreshold`), instead of the fixed
            ``pseudo_label_cfg.score_thr``. ``num_classes`` is taken from
            the head and ``init`` defaults to ``score_thr``. The head's
            ``predict_by_feat`` then runs with ``score_thr=floor`` and
            without the ``max_per_img`` cut; each box is kept if its score
            reaches its class's threshold, and then at most
            ``max_per_img`` per image. The thresholds are updated from
            every training batch, are part of the model's state dict
            (``adaptive_score_thr.thresholds``) and so of checkpoints and
            resume. None keeps the fixed threshold. Defaults to None.
        head_adapter (:obj:`ConfigDict` or dict, optional): The head
            adapter, e.g. ``dict(type='ClassScoreHeadAdapter')``. None
            picks the adapter registered for the most specific class of
            the head's MRO (for two-stage detectors, of the detector).
            Defaults to None.
        semi_test_cfg (:obj:`ConfigDict` or dict, optional): ``predict_on``
            and ``extract_feat_on`` (``'teacher'`` or ``'student'``).
            Defaults to ``dict(predict_on='student',
            extract_feat_on='student')``.
        channels_last (bool): Keep the student's and the teacher's
            weights and the images in ``torch.channels_last`` memory
            format (the same computation; often faster convolutions on
            CPUs, see docs/performance.md). Defaults to False.
        data_preprocessor (:obj:`ConfigDict` or dict, optional): Usually
            ``dict(type='mmdet.MultiBranchDataPreprocessor',
            data_preprocessor=<the detector's>)``. Defaults to None.
        init_cfg (:obj:`ConfigDict` or list[:obj:`ConfigDict`] or dict or
            list[dict], optional): Initialization config. Defaults to None.

    Example:
        >>> model = dict(
        ...     type='SSDADetector',
        ...     detector=_base_.model,
        ...     data_preprocessor=dict(
        ...         type='mmdet.MultiBranchDataPreprocessor',
        ...         data_preprocessor=_base_.model.data_preprocessor),
        ...     distill_loss=dict(
        ...         type='PseudoLabelDistillLoss', loss_weight=0.005),
        ...     consistency_loss=dict(type='ConsistencyLoss', loss_weight=2.0),
        ...     semi_train_cfg=dict(
        ...         pseudo_label_cfg=dict(score_thr=0.5, max_per_img=20),
        ...         empty_pseudo_policy='background'),
        ...     semi_test_cfg=dict(predict_on='student'))
        >>> # a child config: per-class thresholds, soft distillation, no
        >>> # background push from images without pseudo-labels
        >>> model = dict(
        ...     adaptive_score_thr=dict(
        ...         type='ClassAdaptiveThreshold', floor=0.1, ceiling=0.9,
        ...         momentum=0.01),
        ...     distill_loss=dict(
        ...         _delete_=True, type='YOLOSoftDistillLoss',
        ...         loss_weight=0.005, conf_thr=0.5),
        ...     semi_train_cfg=dict(empty_pseudo_policy='ignore'))
    """

    default_semi_train_cfg = dict(
        freeze_teacher=True,
        supervised_streams=('source_real', 'source_fake'),
        pseudo_label_cfg=dict(
            multi_label=True,
            nms_pre=30000,
            score_thr=0.5,
            nms=dict(type='nms', iou_threshold=0.3),
            max_per_img=20),
        empty_pseudo_policy='background',
        class_names=None,
        score_quantiles=(0.5, 0.9, 0.99),
        analysis_iou_thr=0.5,
        iters_per_epoch=None,
        fused_student_forward=False,
        teacher_bn_stats='student',
        student_bn_stats='all',
        distill_warmup_iters=0)
    default_semi_test_cfg = dict(
        predict_on='student', extract_feat_on='student')

    def __init__(self,
                 detector: ConfigType,
                 distill_loss: OptConfigType = dict(
                     type='PseudoLabelDistillLoss', loss_weight=0.005),
                 consistency_loss: OptConfigType = dict(
                     type='ConsistencyLoss', loss_weight=2.0),
                 semi_train_cfg: OptConfigType = None,
                 adaptive_score_thr: OptConfigType = None,
                 head_adapter: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 channels_last: bool = False,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        # a misspelt key would otherwise train with the default silently
        check_option_keys(
            semi_train_cfg,
            dict(self.default_semi_train_cfg,
                 pseudo_label_cfg=HEAD_TEST_CFG_KEYS), 'model.semi_train_cfg')
        check_option_keys(semi_test_cfg, self.default_semi_test_cfg,
                          'model.semi_test_cfg')
        try:
            super().__init__(
                detector=detector,
                semi_train_cfg=self._merge_cfg(self.default_semi_train_cfg,
                                               semi_train_cfg),
                semi_test_cfg=self._merge_cfg(self.default_semi_test_cfg,
                                              semi_test_cfg),
                data_preprocessor=data_preprocessor,
                init_cfg=init_cfg)
        except KeyError as error:
            if 'mmssda::model registry' not in str(error) or \
                    '_scope_' in (detector or {}):
                raise
            raise KeyError(
                f'{error.args[0]} Building model.detector: an mmdet '
                "detector needs _scope_='mmdet' in its dict (mmssda's "
                "registry resolves unscoped types through mmyolo's)"
            ) from error
        #: What the wrapper reads from the head (docs/detectors.md).
        self.head_adapter = build_head_adapter(self.student, head_adapter)
        self.head_adapter.check(self.student, self.semi_train_cfg)
        self.supervised_streams = tuple(
            self.semi_train_cfg.supervised_streams)
        unknown = set(self.supervised_streams) - set(STREAMS)
        if unknown:
            raise ValueError(f'Unknown streams {sorted(unknown)}; streams '
                             f'are {STREAMS}')
        self.distill_loss = MODELS.build(distill_loss) \
            if distill_loss is not None else None
        if getattr(self.distill_loss, 'uses_head_outputs', False):
            self.distill_loss.check_adapter(
                self.head_adapter, self.head_adapter.head_name(self.student))
        self.consistency_loss = MODELS.build(consistency_loss) \
            if consistency_loss is not None else None
        if self.consistency_loss is not None and not {
                'source_real', 'source_fake'
        } <= set(self.supervised_streams):
            raise ValueError('consistency_loss compares the source_real and '
                             'source_fake losses: both must be in '
                             'semi_train_cfg.supervised_streams')
        quantiles = tuple(self.semi_train_cfg.score_quantiles)
        if not all(0 <= q <= 1 for q in quantiles):
            raise ValueError('semi_train_cfg.score_quantiles must lie in '
                             f'[0, 1], got {quantiles}')
        policy = self.semi_train_cfg.empty_pseudo_policy
        if policy not in EMPTY_PSEUDO_POLICIES:
            raise ValueError('semi_train_cfg.empty_pseudo_policy must be one '
                             f'of {EMPTY_PSEUDO_POLICIES}, got {policy!r}')
        self.adaptive_score_thr = self._build_adaptive_score_thr(
            adaptive_score_thr)
        self._check_teacher_bn_stats()
        self._check_student_bn_stats()
        if self.semi_train_cfg.distill_warmup_iters < 0:
            raise ValueError('semi_train_cfg.distill_warmup_iters must be '
                             '>= 0, got '
                             f'{self.semi_train_cfg.distill_warmup_iters}')
        #: Optimizer steps since distillation started; set by
        #: SSDAMeanTeacherHook before every iteration.
        self.distill_steps = 0
        #: Whether the distillation branch runs; SSDAMeanTeacherHook sets
        #: it to False during burn-in.
        self.distill_active = True
        self.memory_format = torch.channels_last if channels_last \
            else torch.contiguous_format
        if channels_last:
            self.student.to(memory_format=self.memory_format)
            self.teacher.to(memory_format=self.memory_format)
        self.sync_teacher_with_student()

    def _build_adaptive_score_thr(self, cfg: OptConfigType):
        """Build ``adaptive_score_thr`` for the head's classes, or None."""
        if cfg is None:
            return None
        cfg = dict(copy.deepcopy(cfg))
        cfg.setdefault('num_classes',
                       self.head_adapter.num_classes(self.student))
        module = MODELS.build(cfg)
        if cfg.get('init') is None:
            module.reset(self.semi_train_cfg.pseudo_label_cfg.score_thr)
        return module

    def _check_teacher_bn_stats(self) -> None:
        """Refuse an unknown ``teacher_bn_stats`` or ``'target'`` for a
        detector without BatchNorm."""
        value = self.semi_train_cfg.teacher_bn_stats
        if value not in TEACHER_BN_STATS:
            raise ValueError('semi_train_cfg.teacher_bn_stats must be one of '
                             f'{TEACHER_BN_STATS}, got {value!r}')
        if value == 'target' and not _bn_layers(self.teacher):
            raise ValueError(
                "semi_train_cfg.teacher_bn_stats='target' needs BatchNorm "
                f'layers; {type(self.teacher).__name__} with '
                f'{self.head_adapter.head_name(self.student)} has none')

    def _check_student_bn_stats(self) -> None:
        """Refuse an unknown ``student_bn_stats``, or ``'target'`` for a
        detector without BatchNorm or with ``fused_student_forward`` (whose
        joint batch mixes the streams' statistics)."""
        value = self.semi_train_cfg.student_bn_stats
        if value not in STUDENT_BN_STATS:
            raise ValueError('semi_train_cfg.student_bn_stats must be one of '
                             f'{STUDENT_BN_STATS}, got {value!r}')
        if value != 'target':
            return
        if not _bn_layers(self.student):
            raise ValueError(
                "semi_train_cfg.student_bn_stats='target' needs BatchNorm "
                f'layers; {type(self.student).__name__} with '
                f'{self.head_adapter.head_name(self.student)} has none')
        if self.semi_train_cfg.fused_student_forward:
            raise ValueError(
                "semi_train_cfg.student_bn_stats='target' needs "
                'semi_train_cfg.fused_student_forward=False: the fused '
                'forward normalises source and target images as one batch')

    @property
    def student_keeps_target_bn_stats(self) -> bool:
        """bool: Whether the student's BatchNorm running statistics come
        from target-real batches only (``student_bn_stats='target'``)."""
        return self.semi_train_cfg.student_bn_stats == 'target'

    @contextmanager
    def _student_bn_stats_frozen(self):
        """Within: the student's BatchNorm layers (in train mode) normalise
        with batch statistics but do not update their running statistics."""
        layers = _bn_layers(self.student)
        for layer in layers:
            layer.track_running_stats = False
        try:
            yield
        finally:
            for layer in layers:
                layer.track_running_stats = True

    @torch.no_grad()
    def update_student_bn_stats(self, batch_inputs: Tensor,
                                batch_data_samples: SampleList) -> None:
        """Update the student's BatchNorm running statistics from a batch by
        one forward pass without gradients (in the student's mode).

        Args:
            batch_inputs (Tensor): Images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Their samples
                (a two-stage detector's RPN reads their metainfo).
        """
        self.student._forward(batch_inputs, batch_data_samples)

    @property
    def teacher_keeps_bn_stats(self) -> bool:
        """bool: Whether the teacher keeps BatchNorm statistics of the
        target batches it labels (``teacher_bn_stats='target'``)."""
        return self.semi_train_cfg.teacher_bn_stats == 'target'

    @property
    def distill_weight_scale(self) -> float:
        """float: The factor of the distillation losses at this step
        (``semi_train_cfg.distill_warmup_iters``)."""
        warmup = self.semi_train_cfg.distill_warmup_iters
        return min(1., (self.distill_steps + 1) / warmup) if warmup else 1.

    @staticmethod
    def _merge_cfg(default: dict, cfg: OptConfigType) -> ConfigDict:
        """Return ``default`` updated (recursively) with ``cfg``."""
        merged = Config(copy.deepcopy(default))
        merged.merge_from_dict(copy.deepcopy(dict(cfg or {})))
        return ConfigDict(merged.to_dict())

    def _format(self, batch_inputs: Tensor) -> Tensor:
        """Images in the model's memory format (a no-op by default)."""
        if self.memory_format is torch.contiguous_format:
            return batch_inputs
        return batch_inputs.contiguous(memory_format=self.memory_format)

    @property
    def distill_enabled(self) -> bool:
        """bool: Whether this iteration trains on pseudo-labels."""
        return self.distill_loss is not None and self.distill_active

    @torch.no_grad()
    def sync_teacher_with_student(self) -> None:
        """Copy the student's parameters and buffers into the teacher."""
        self.teacher.load_state_dict(self.student.state_dict())

    def init_weights(self) -> None:
        """Initialise the student, then start the teacher equal to it."""
        super().init_weights()
        self.sync_teacher_with_student()

    def loss(self, multi_batch_inputs: Dict[str, Tensor],
             multi_batch_data_samples: Dict[str, SampleList]) -> dict:
        """Calculate the SSDA-YOLO losses of a four-stream batch.

        Args:
            multi_batch_inputs (dict[str, Tensor]): Images per stream
                (``source_real``, ``source_fake``, ``target_real``,
                ``target_fake``), each of shape (N, C, H, W); the two
                streams of a domain hold the pairs in the same order.
            multi_batch_data_samples (dict[str, list[:obj:`DetDataSample`]]):
                Data samples per stream. Source samples carry labels;
                target samples may carry analysis labels, which only feed
                the logged pseudo-label precision/recall.

        Returns:
            dict[str, Tensor]: Losses (keys containing ``loss``, which the
            runner sums) and logged statistics.
        """
        multi_batch_inputs = {
            stream: self._format(inputs) if inputs is not None else None
            for stream, inputs in multi_batch_inputs.items()
        }
        self.head_adapter.before_loss(self.student, self.semi_train_cfg)
        feats = dict()
        if self.semi_train_cfg.get('fused_student_forward', False):
            streams = list(self.supervised_streams)
            if self.distill_enabled:
                streams.append('target_real')
            feats = self.extract_student_feats(multi_batch_inputs, streams)
        losses = dict()
        totals = dict()
        target_bn = self.training and self.student_keeps_target_bn_stats
        with self._student_bn_stats_frozen() if target_bn else nullcontext():
            for stream in self.supervised_streams:
                stream_losses = self.loss_by_gt_instances(
                    multi_batch_inputs[stream],
                    multi_batch_data_samples[stream],
                    stream,
                    feats=feats.get(stream))
                totals[stream] = self._sum_losses(stream_losses)
                losses.update(stream_losses)
        if target_bn and not self.distill_enabled:
            self.update_student_bn_stats(
                multi_batch_inputs['target_real'],
                multi_batch_data_samples['target_real'])
        if self.distill_enabled:
            distill = self.loss_by_distillation(
                multi_batch_inputs,
                multi_batch_data_samples,
                student_feats=feats.get('target_real'))
            scale = self.distill_weight_scale
            if scale != 1:
                distill = reweight_loss_dict(distill, scale)
            losses.update(distill)
        if self.consistency_loss is not None:
            losses.update(
                self.loss_by_consistency(totals['source_real'],
                                         totals['source_fake']))
        return losses

    def extract_student_feats(self, multi_batch_inputs: Dict[str, Tensor],
                              streams: List[str]) -> Dict[str, Tuple[Tensor]]:
        """The student's features of several streams from ONE forward pass.

        The streams' images are concatenated along the batch, run through
        the student's backbone and neck together, and every feature level
        is split back. In train mode BatchNorm layers see the joint batch
        (see ``semi_train_cfg.fused_student_forward``).

        Args:
            multi_batch_inputs (dict[str, Tensor]): Images per stream, all
                of the same (C, H, W).
            streams (list[str]): The streams to run, in this order.

        Returns:
            dict[str, tuple[Tensor]]: Multi-level features per stream.
        """
        inputs = [multi_batch_inputs[stream] for stream in streams]
        shapes = {tuple(x.shape[1:]) for x in inputs}
        if len(shapes) != 1:
            raise ValueError('fused_student_forward needs images of one '
                             f'size in all streams, got {sorted(shapes)} for '
                             f'{streams}')
        sizes = [len(x) for x in inputs]
        feats = self.student.extract_feat(torch.cat(inputs))
        per_level = [level.split(sizes) for level in feats]
        return {
            stream: tuple(level[i] for level in per_level)
            for i, stream in enumerate(streams)
        }

    def student_loss(self,
                     batch_inputs: Tensor,
                     batch_data_samples: SampleList,
                     feats: Optional[Tuple[Tensor]] = None) -> dict:
        """The student's detection loss, from its features if given.

        Args:
            batch_inputs (Tensor): Images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Their samples.
            feats (tuple[Tensor], optional): The student's features of
                ``batch_inputs`` (:meth:`extract_student_feats`); computed
                here when None. Defaults to None.

        Returns:
            dict[str, Tensor]: The detector's losses (labels packed as the
            head adapter says; mmdet's may be lists, one per level).
        """
        return self.head_adapter.loss(self.student, batch_inputs,
                                      batch_data_samples, feats)

    def loss_by_gt_instances(self,
                             batch_inputs: Tensor,
                             batch_data_samples: SampleList,
                             stream: str = 'source_real',
                             feats: Optional[Tuple[Tensor]] = None) -> dict:
        """Student's detection loss on one labelled stream.

        Args:
            batch_inputs (Tensor): Images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Samples with
                ``gt_instances``.
            stream (str): The stream name, used as key prefix.
                Defaults to ``'source_real'``.
            feats (tuple[Tensor], optional): The student's features of
                ``batch_inputs``, if already computed. Defaults to None.

        Returns:
            dict[str, Tensor]: The head's losses prefixed ``'{stream}.'``.
        """
        losses = self.student_loss(batch_inputs, batch_data_samples, feats)
        return rename_loss_dict(f'{stream}.', losses)

    def loss_by_distillation(
            self,
            multi_batch_inputs: Dict[str, Tensor],
            multi_batch_data_samples: Dict[str, SampleList],
            student_feats: Optional[Tuple[Tensor]] = None) -> dict:
        """Teacher pseudo-labels on target-fake, student loss on target-real.

        Args:
            multi_batch_inputs (dict[str, Tensor]): See :meth:`loss`.
            multi_batch_data_samples (dict[str, list[:obj:`DetDataSample`]]):
                See :meth:`loss`.
            student_feats (tuple[Tensor], optional): The student's features
                of ``target_real``, if already computed. Defaults to None.

        Returns:
            dict[str, Tensor]: ``distill.loss_*`` and the logged statistics.
        """
        pseudo_data_samples, batch_info = self.get_pseudo_instances(
            multi_batch_inputs['target_fake'],
            multi_batch_data_samples['target_fake'])
        target_data_samples = multi_batch_data_samples['target_real']
        student_data_samples = self.project_pseudo_instances(
            pseudo_data_samples, target_data_samples)
        losses = self.loss_by_pseudo_instances(
            multi_batch_inputs['target_real'],
            student_data_samples,
            batch_info,
            feats=student_feats)
        losses.update(
            self.pseudo_label_statistics(pseudo_data_samples,
                                         target_data_samples, batch_info))
        return losses

    @torch.no_grad()
    def get_pseudo_instances(
            self, batch_inputs: Tensor, batch_data_samples: SampleList
    ) -> Tuple[SampleList, Optional[dict]]:
        """Predict pseudo-labels with the teacher in eval mode.

        The head's ``predict_by_feat`` runs with
        ``semi_train_cfg.pseudo_label_cfg`` instead of its ``test_cfg``, in
        input-image coordinates (no rescaling, clipped to ``img_shape``).
        With ``adaptive_score_thr`` it runs with ``score_thr=floor`` and no
        ``max_per_img`` cut; in training mode the thresholds are first
        updated from these candidates, then every image keeps its boxes
        above their class's threshold, at most ``max_per_img``.

        Args:
            batch_inputs (Tensor): Target-fake images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Their samples;
                they are not modified.

        Returns:
            tuple[list[:obj:`DetDataSample`], dict]: New samples (the input
            metainfo) whose ``gt_instances`` hold the pseudo-labels
            (``bboxes`` (K, 4), ``labels`` (K, ), ``scores`` (K, )), and the
            batch info: ``teacher_outs``, the teacher head's raw outputs
            (for losses that use them; None for two-stage detectors) and
            ``teacher_top_scores`` (N, ), each image's highest score
            before any threshold (see the head adapter).
        """
        self.teacher.eval()
        target_bn = self.training and self.teacher_keeps_bn_stats
        if target_bn:
            self._teacher_bn_train(True)
        batch_img_metas = [
            self._pseudo_label_img_meta(data_samples)
            for data_samples in batch_data_samples
        ]
        cfg = copy.deepcopy(self.semi_train_cfg.pseudo_label_cfg)
        thr = self.adaptive_score_thr
        if thr is not None:
            max_per_img = cfg.get('max_per_img', 100)
            cfg.update(
                score_thr=thr.floor,
                max_per_img=max(cfg.get('nms_pre', 100000), max_per_img))
        try:
            results_list, outs, top_scores = \
                self.head_adapter.predict_pseudo_labels(
                    self.teacher, batch_inputs, batch_img_metas, cfg)
        finally:
            if target_bn:
                self._teacher_bn_train(False)
        batch_info = dict(teacher_outs=outs, teacher_top_scores=top_scores)
        if thr is not None:
            if self.training:
                thr.update(results_list)
            results_list = [
                thr.filter(results, max_per_img) for results in results_list
            ]
        pseudo_data_samples = []
        for data_samples, results in zip(batch_data_samples, results_list):
            pseudo = DetDataSample(metainfo=data_samples.metainfo)
            pseudo.gt_instances = InstanceData(
                bboxes=results.bboxes.detach(),
                labels=results.labels.long(),
                scores=results.scores.detach())
            pseudo_data_samples.append(pseudo)
        return pseudo_data_samples, batch_info

    def _teacher_bn_train(self, mode: bool) -> None:
        """Put the teacher's BatchNorm layers in train (batch statistics,
        running statistics updated) or eval mode."""
        for module in self.teacher.modules():
            if isinstance(module, _BatchNorm):
                module.train(mode)

    @staticmethod
    def _pseudo_label_img_meta(data_samples: DetDataSample) -> dict:
        """Image meta that makes the head keep input-image coordinates."""
        img_meta = dict(data_samples.metainfo)
        img_shape = img_meta.get('img_shape',
                                 img_meta.get('batch_input_shape'))
        img_meta.pop('pad_param', None)
        img_meta.update(ori_shape=img_shape, scale_factor=(1., 1.))
        return img_meta

    def project_pseudo_instances(self, batch_pseudo_instances: SampleList,
                                 batch_data_samples: SampleList) -> SampleList:
        """Give the target-real images the pseudo-labels of their fakes.

        A real/fake pair went through the same geometric transforms
        (``PairedTransform``, ``PairedMosaic``), so the boxes carry over
        unchanged.

        Args:
            batch_pseudo_instances (list[:obj:`DetDataSample`]): Output of
                :meth:`get_pseudo_instances`.
            batch_data_samples (list[:obj:`DetDataSample`]): Target-real
                samples, in pair order; they are not modified.

        Returns:
            list[:obj:`DetDataSample`]: New samples with the target-real
            metainfo and the pseudo-labels as ``gt_instances``.
        """
        if len(batch_pseudo_instances) != len(batch_data_samples):
            raise ValueError('target_real and target_fake must hold the same '
                             f'pairs, got {len(batch_data_samples)} and '
                             f'{len(batch_pseudo_instances)} images')
        student_data_samples = []
        for pseudo, data_samples in zip(batch_pseudo_instances,
                                        batch_data_samples):
            student = DetDataSample(metainfo=data_samples.metainfo)
            student.gt_instances = InstanceData(
                bboxes=pseudo.gt_instances.bboxes,
                labels=pseudo.gt_instances.labels)
            student_data_samples.append(student)
        return student_data_samples

    def loss_by_pseudo_instances(self,
                                 batch_inputs: Tensor,
                                 batch_data_samples: SampleList,
                                 batch_info: Optional[dict] = None,
                                 feats: Optional[Tuple[Tensor]] = None
                                 ) -> dict:
        """Student's distillation loss against the pseudo-labels, weighted.

        With ``semi_train_cfg.empty_pseudo_policy='ignore'`` only the
        images with pseudo-labels enter the loss (see the class docstring).

        Args:
            batch_inputs (Tensor): Target-real images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Samples whose
                ``gt_instances`` are the pseudo-labels (possibly empty).
            batch_info (dict, optional): :meth:`get_pseudo_instances`'s
                batch info; ``teacher_outs`` is needed by a
                ``distill_loss`` with ``uses_head_outputs``. Defaults to
                None.
            feats (tuple[Tensor], optional): The student's features of
                ``batch_inputs``, if already computed. Defaults to None.

        Returns:
            dict[str, Tensor]: ``distill.loss_*``, weighted by
            ``distill_loss``.
        """
        teacher_outs = (batch_info or {}).get('teacher_outs')
        zero = False
        if self.semi_train_cfg.empty_pseudo_policy == 'ignore':
            keep = [
                i for i, s in enumerate(batch_data_samples)
                if len(s.gt_instances) > 0
            ]
            # no image with pseudo-labels: the losses of one image, times 0
            zero = not keep
            keep = keep or [0]
            if len(keep) < len(batch_data_samples):
                index = batch_inputs.new_tensor(keep, dtype=torch.long)
                batch_inputs = batch_inputs[index]
                batch_data_samples = [batch_data_samples[i] for i in keep]
                if feats is not None:
                    feats = tuple(level[index] for level in feats)
                if teacher_outs is not None:
                    teacher_outs = tuple([level[index] for level in out]
                                         for out in teacher_outs)
        if getattr(self.distill_loss, 'uses_head_outputs', False):
            if teacher_outs is None:
                raise ValueError(f'{type(self.distill_loss).__name__} needs '
                                 "batch_info['teacher_outs']")
            if feats is None:
                feats = self.student.extract_feat(batch_inputs)
            head = self.head_adapter.head(self.student)
            losses = self.distill_loss(
                head,
                head(feats),
                teacher_outs, [s.gt_instances for s in batch_data_samples],
                [s.metainfo for s in batch_data_samples],
                adapter=self.head_adapter)
        else:
            losses = self.distill_loss(
                self.student_loss(batch_inputs, batch_data_samples, feats))
        if zero:
            losses = {
                name: [v * 0 for v in value] if isinstance(
                    value, (list, tuple)) else value * 0
                for name, value in losses.items()
            }
        return rename_loss_dict('distill.', losses)

    def loss_by_consistency(self, real_loss: Tensor,
                            fake_loss: Tensor) -> dict:
        """Consistency between the source-real and source-fake totals.

        Args:
            real_loss (Tensor): ``L_sr``, shape (1, ) or ().
            fake_loss (Tensor): ``L_sf``, same shape.

        Returns:
            dict[str, Tensor]: ``{'consistency.loss': Tensor}``, and the
            logged net gradient weights of the two streams,
            ``consistency.real_weight`` and ``consistency.fake_weight``,
            when the loss gives them (``ConsistencyLoss.stream_weights``:
            below 0 the student learns to do worse on that stream).
        """
        losses = dict(loss=self.consistency_loss(real_loss, fake_loss))
        if hasattr(self.consistency_loss, 'stream_weights'):
            losses['real_weight'], losses['fake_weight'] = \
                self.consistency_loss.stream_weights(real_loss, fake_loss)
            self._warn_negative_weight(losses)
        return rename_loss_dict('consistency.', losses)

    def _warn_negative_weight(self, weights: Dict[str, Tensor]) -> None:
        """Warn once when the consistency term trains the student to do
        worse on a source stream (its net gradient weight below 0)."""
        negative = [
            key for key in ('real_weight', 'fake_weight')
            if weights[key].item() < 0
        ]
        if not negative or getattr(self, '_warned_negative_weight', False):
            return
        self._warned_negative_weight = True
        values = ', '.join(f'{key} {weights[key].item():.2f}'
                           for key in negative)
        print_log(
            'SSDADetector: the consistency term outweighs the detection '
            f'loss ({values}): the student is trained to do worse on that '
            'source stream. The head\'s losses are larger than those '
            'model.consistency_loss.loss_weight was set for, or its real '
            'and fake losses are far apart; set '
            'model.consistency_loss.reference_loss (the per-stream loss '
            'the weight was set for) and/or pull=\'worse\' '
            '(docs/detectors.md).',
            logger='current',
            level=logging.WARNING)

    @staticmethod
    def _sum_losses(losses: Dict[str, Tensor]) -> Tensor:
        """Sum the entries the runner sums (keys containing ``loss``), as
        MMEngine's ``parse_losses`` does: a tensor's mean, a list's (one
        value per level, mmdet's RetinaNet and RPN) sum of means."""
        total = 0.
        for name, value in losses.items():
            if 'loss' not in name:
                continue
            if isinstance(value, (list, tuple)):
                total = total + sum(v.mean() for v in value)
            else:
                total = total + value.mean()
        return total

    def pseudo_label_statistics(self,
                                pseudo_data_samples: SampleList,
                                target_data_samples: SampleList,
                                batch_info: Optional[dict] = None) -> dict:
        """Pseudo-label statistics for logging; never part of the loss.

        The keys are listed in the class docstring. Device values are
        gathered into one tensor and copied to the host once.

        Args:
            pseudo_data_samples (list[:obj:`DetDataSample`]): Teacher
                pseudo-labels per image.
            target_data_samples (list[:obj:`DetDataSample`]): Target-real
                samples; their ``gt_instances``, if any, are analysis labels.
            batch_info (dict, optional): :meth:`get_pseudo_instances`'s
                batch info; its ``teacher_top_scores`` give the score
                quantiles. Defaults to None.

        Returns:
            dict[str, Tensor]: Scalar CPU tensors.
        """
        pseudo = [s.gt_instances for s in pseudo_data_samples]
        num_imgs = max(len(pseudo), 1)
        # box counts are known on the host (NMS output shapes)
        num_pseudo = sum(len(p) for p in pseudo)
        host = {
            'distill.num_pseudo': num_pseudo / num_imgs,
            'distill.frac_with_pseudo':
            sum(len(p) > 0 for p in pseudo) / num_imgs
        }
        device = dict()
        class_keys = self._class_keys()
        if class_keys and pseudo:
            labels = torch.cat([p.labels.long() for p in pseudo])
            # scatter_add, unlike bincount, needs no host sync on a GPU
            ones = torch.ones_like(labels, dtype=torch.float)
            counts = ones.new_zeros(len(class_keys)).scatter_add_(
                0, labels, ones)
            for key, count in zip(class_keys, counts / num_imgs):
                device[f'distill.num_pseudo_{key}'] = count
        top_scores = (batch_info or {}).get('teacher_top_scores')
        if top_scores is not None and len(top_scores):
            quantiles = list(self.semi_train_cfg.score_quantiles)
            values = torch.quantile(top_scores.float(),
                                    top_scores.new_tensor(quantiles).float())
            for q, value in zip(quantiles, values):
                device[f'distill.teacher_score_p{q * 100:g}'] = value
        if self.adaptive_score_thr is not None and class_keys:
            for key, value in zip(class_keys,
                                  self.adaptive_score_thr.thresholds):
                device[f'distill.score_thr_{key}'] = value
        gts = [
            s.gt_instances if hasattr(s, 'gt_instances') else InstanceData()
            for s in target_data_samples
        ]
        num_gt = sum(len(g) for g in gts)
        if num_gt > 0:
            num_matched = sum(
                self._count_matches(p, g,
                                    self.semi_train_cfg.analysis_iou_thr)
                for p, g in zip(pseudo, gts))
            if num_pseudo > 0:
                host['distill.pseudo_precision'] = num_matched / num_pseudo
            host['distill.pseudo_recall'] = num_matched / num_gt
        stats = {key: torch.tensor(float(v)) for key, v in host.items()}
        if device:
            values = torch.stack([v.detach().float()
                                  for v in device.values()]).cpu()
            stats.update(zip(device, values.unbind()))
        return stats

    def _class_keys(self) -> List[str]:
        """Key suffixes of the per-class statistics, one per class."""
        num_classes = self.head_adapter.num_classes(self.student)
        if not num_classes:
            return []
        names = self.semi_train_cfg.get('class_names')
        source = 'semi_train_cfg.class_names'
        if names is None:
            names = (getattr(self, 'dataset_meta', None) or {}).get('classes')
            source = "dataset_meta['classes']"
        if names is None:
            return [str(i) for i in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f'{source} names {len(names)} classes but the '
                             f'head has {num_classes}')
        keys = [re.sub(r'[^0-9A-Za-z_-]', '_', str(n)) for n in names]
        return [
            str(i) if 'loss' in key or keys.count(key) > 1 else key
            for i, key in enumerate(keys)
        ]

    @staticmethod
    def _count_matches(pseudo: InstanceData, gt: InstanceData,
                       iou_thr: float) -> int:
        """Greedy VOC-style matching, by descending score, same class only.

        Args:
            pseudo (:obj:`InstanceData`): ``bboxes`` (K, 4), ``labels``
                (K, ), ``scores`` (K, ).
            gt (:obj:`InstanceData`): ``bboxes`` (G, 4), ``labels`` (G, ).
            iou_thr (float): Minimum IoU of a match.

        Returns:
            int: The number of pseudo boxes matched to distinct gt boxes.
        """
        if len(pseudo) == 0 or len(gt) == 0:
            return 0
        gt_bboxes = gt.bboxes.to(pseudo.bboxes.device).float()
        gt_labels = gt.labels.to(pseudo.labels.device)
        ious = bbox_overlaps(pseudo.bboxes.float(), gt_bboxes)
        ious[pseudo.labels[:, None] != gt_labels[None, :]] = -1
        order = pseudo.scores.argsort(descending=True)
        # one device-to-host copy; the greedy loop runs on the host
        ious = ious[order].cpu().numpy()
        taken = np.zeros(len(gt), dtype=bool)
        matched = 0
        for candidate_ious in ious:
            candidate_ious = np.where(taken, -1, candidate_ious)
            best = int(candidate_ious.argmax())
            if candidate_ious[best] >= iou_thr:
                taken[best] = True
                matched += 1
        return matched

    def predict(self, batch_inputs: Tensor,
                batch_data_samples: SampleList) -> SampleList:
        """Predict with the teacher or the student (``semi_test_cfg``).

        Args:
            batch_inputs (Tensor): Images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Their samples.

        Returns:
            list[:obj:`DetDataSample`]: Samples with ``pred_instances``.
        """
        return self._model_for('predict_on').predict(
            self._format(batch_inputs), batch_data_samples)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList = None) -> Tuple[List[Tensor]]:
        """Raw head outputs of the model named by ``semi_test_cfg``.

        Args:
            batch_inputs (Tensor): Images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`], optional):
                Their samples. Defaults to None.

        Returns:
            tuple: The head's outputs.
        """
        return self._model_for('predict_on')._forward(
            self._format(batch_inputs), batch_data_samples)

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """Features of the model named by ``semi_test_cfg.extract_feat_on``.

        Args:
            batch_inputs (Tensor): Images of shape (N, C, H, W).

        Returns:
            tuple[Tensor]: Multi-level features.
        """
        return self._model_for('extract_feat_on').extract_feat(
            self._format(batch_inputs))

    def _model_for(self, key: str):
        """The student or teacher that ``semi_test_cfg[key]`` names."""
        name = self.semi_test_cfg.get(key, 'student')
        if name not in ('student', 'teacher'):
            raise ValueError(f'semi_test_cfg.{key} must be "student" or '
                             f'"teacher", got {name!r}')
        return getattr(self, name)

    def train(self, mode: bool = True) -> 'SSDADetector':
        """Set train mode; a frozen teacher always stays in eval mode."""
        super().train(mode)
        if self.semi_train_cfg.get('freeze_teacher', True):
            self.teacher.eval()
        return self
