import copy
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmdet.models.detectors import SemiBaseDetector
from mmdet.models.utils import rename_loss_dict
from mmdet.structures import DetDataSample, SampleList
from mmdet.structures.bbox import bbox_overlaps
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmssda.registry import MODELS

#: The four input streams of a batch (see docs/design.md).
STREAMS = ('source_real', 'source_fake', 'target_real', 'target_fake')


@MODELS.register_module()
class SSDADetector(SemiBaseDetector):
    """Semi-supervised domain-adaptive teacher-student detector.

    Implements the training objective of `SSDA-YOLO: Semi-supervised Domain
    Adaptive YOLO for Cross-Domain Object Detection
    <https://arxiv.org/abs/2211.02213>`_ (Zhou et al., CVIU 2023) around any
    single-stage detector whose head's ``predict_by_feat`` accepts a ``cfg``
    (mmyolo's YOLOv5/YOLOv8 heads and mmdet's dense heads do). A student and
    a teacher are built from ``detector``; per iteration

    - ``L_sr``, ``L_sf``: the student's detection loss on ``source_real`` and
      ``source_fake`` (the source image translated to the target style) with
      the source labels;
    - ``L_d``: the teacher, in eval mode and without gradients, predicts on
      ``target_fake``; its boxes after ``semi_train_cfg.pseudo_label_cfg``
      (score 0.5, NMS IoU 0.3, at most 20, multi-label) are the labels of the
      student's detection loss on the paired ``target_real`` images. An image
      without pseudo-labels contributes only its background (objectness)
      term: no box is ever invented;
    - ``L_c = alpha * (L_sr - L_sf) ** 2`` (:class:`ConsistencyLoss`);
    - total ``= L_sr + L_sf + lambda * L_d + L_c``.

    The teacher is updated by :class:`SSDAMeanTeacherHook`, which also owns
    the burn-in switch :attr:`distill_active`. Loss keys name the branch:
    ``source_real.loss_cls``, ``source_fake.loss_obj``, ``distill.loss_bbox``,
    ``consistency.loss``; the non-loss keys ``distill.num_pseudo`` (pseudo
    boxes per image) and, when the target samples carry analysis labels,
    ``distill.pseudo_precision``/``distill.pseudo_recall`` are only logged.

    Args:
        detector (:obj:`ConfigDict` or dict): The single-stage detector
            config the student and the teacher are built from.
        distill_loss (:obj:`ConfigDict` or dict, optional): Config of the
            distillation weighting, e.g. :class:`PseudoLabelDistillLoss`.
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
            - ``analysis_iou_thr`` (float): IoU at which pseudo-labels are
              matched to the target's analysis labels for the logged
              precision/recall. Defaults to 0.5.
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
        ...         pseudo_label_cfg=dict(score_thr=0.5, max_per_img=20)),
        ...     semi_test_cfg=dict(predict_on='student'))
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
        analysis_iou_thr=0.5,
        fused_student_forward=False)
    default_semi_test_cfg = dict(
        predict_on='student', extract_feat_on='student')

    def __init__(self,
                 detector: ConfigType,
                 distill_loss: OptConfigType = dict(
                     type='PseudoLabelDistillLoss', loss_weight=0.005),
                 consistency_loss: OptConfigType = dict(
                     type='ConsistencyLoss', loss_weight=2.0),
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 channels_last: bool = False,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            detector=detector,
            semi_train_cfg=self._merge_cfg(self.default_semi_train_cfg,
                                           semi_train_cfg),
            semi_test_cfg=self._merge_cfg(self.default_semi_test_cfg,
                                          semi_test_cfg),
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.supervised_streams = tuple(
            self.semi_train_cfg.supervised_streams)
        unknown = set(self.supervised_streams) - set(STREAMS)
        if unknown:
            raise ValueError(f'Unknown streams {sorted(unknown)}; streams '
                             f'are {STREAMS}')
        self.distill_loss = MODELS.build(distill_loss) \
            if distill_loss is not None else None
        self.consistency_loss = MODELS.build(consistency_loss) \
            if consistency_loss is not None else None
        if self.consistency_loss is not None and not {
                'source_real', 'source_fake'
        } <= set(self.supervised_streams):
            raise ValueError('consistency_loss compares the source_real and '
                             'source_fake losses: both must be in '
                             'semi_train_cfg.supervised_streams')
        #: Whether the distillation branch runs; SSDAMeanTeacherHook sets
        #: it to False during burn-in.
        self.distill_active = True
        self.memory_format = torch.channels_last if channels_last \
            else torch.contiguous_format
        if channels_last:
            self.student.to(memory_format=self.memory_format)
            self.teacher.to(memory_format=self.memory_format)
        self.sync_teacher_with_student()

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
        feats = dict()
        if self.semi_train_cfg.get('fused_student_forward', False):
            streams = list(self.supervised_streams)
            if self.distill_enabled:
                streams.append('target_real')
            feats = self.extract_student_feats(multi_batch_inputs, streams)
        losses = dict()
        totals = dict()
        for stream in self.supervised_streams:
            stream_losses = self.loss_by_gt_instances(
                multi_batch_inputs[stream],
                multi_batch_data_samples[stream],
                stream,
                feats=feats.get(stream))
            totals[stream] = self._sum_losses(stream_losses)
            losses.update(stream_losses)
        if self.distill_enabled:
            losses.update(
                self.loss_by_distillation(
                    multi_batch_inputs,
                    multi_batch_data_samples,
                    student_feats=feats.get('target_real')))
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
            dict[str, Tensor]: The head's losses.
        """
        if feats is None:
            return self.student.loss(batch_inputs, batch_data_samples)
        return self.student.bbox_head.loss(feats, batch_data_samples)

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
                                         target_data_samples))
        return losses

    @torch.no_grad()
    def get_pseudo_instances(
            self, batch_inputs: Tensor, batch_data_samples: SampleList
    ) -> Tuple[SampleList, Optional[dict]]:
        """Predict pseudo-labels with the teacher in eval mode.

        The head's ``predict_by_feat`` runs with
        ``semi_train_cfg.pseudo_label_cfg`` instead of its ``test_cfg``, in
        input-image coordinates (no rescaling, clipped to ``img_shape``).

        Args:
            batch_inputs (Tensor): Target-fake images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Their samples;
                they are not modified.

        Returns:
            tuple[list[:obj:`DetDataSample`], dict]: New samples (the input
            metainfo) whose ``gt_instances`` hold the pseudo-labels
            (``bboxes`` (K, 4), ``labels`` (K, ), ``scores`` (K, )), and an
            empty batch info dict.
        """
        self.teacher.eval()
        head = self.teacher.bbox_head
        outs = head(self.teacher.extract_feat(batch_inputs))
        # under AMP autocast: post-process (NMS) in float32
        outs = [[o.float() if isinstance(o, Tensor) else o for o in level]
                for level in outs]
        batch_img_metas = [
            self._pseudo_label_img_meta(data_samples)
            for data_samples in batch_data_samples
        ]
        results_list = head.predict_by_feat(
            *outs,
            batch_img_metas=batch_img_metas,
            cfg=self.semi_train_cfg.pseudo_label_cfg,
            rescale=False)
        pseudo_data_samples = []
        for data_samples, results in zip(batch_data_samples, results_list):
            pseudo = DetDataSample(metainfo=data_samples.metainfo)
            pseudo.gt_instances = InstanceData(
                bboxes=results.bboxes.detach(),
                labels=results.labels.long(),
                scores=results.scores.detach())
            pseudo_data_samples.append(pseudo)
        return pseudo_data_samples, dict()

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
        """Student's detection loss against pseudo-labels, weighted.

        Args:
            batch_inputs (Tensor): Target-real images of shape (N, C, H, W).
            batch_data_samples (list[:obj:`DetDataSample`]): Samples whose
                ``gt_instances`` are the pseudo-labels (possibly empty).
            batch_info (dict, optional): Unused; kept for the
                :class:`SemiBaseDetector` interface. Defaults to None.
            feats (tuple[Tensor], optional): The student's features of
                ``batch_inputs``, if already computed. Defaults to None.

        Returns:
            dict[str, Tensor]: ``distill.loss_*``, weighted by
            ``distill_loss``.
        """
        losses = self.student_loss(batch_inputs, batch_data_samples, feats)
        return rename_loss_dict('distill.', self.distill_loss(losses))

    def loss_by_consistency(self, real_loss: Tensor,
                            fake_loss: Tensor) -> dict:
        """Consistency between the source-real and source-fake totals.

        Args:
            real_loss (Tensor): ``L_sr``, shape (1, ) or ().
            fake_loss (Tensor): ``L_sf``, same shape.

        Returns:
            dict[str, Tensor]: ``{'consistency.loss': Tensor}``.
        """
        return rename_loss_dict(
            'consistency.',
            dict(loss=self.consistency_loss(real_loss, fake_loss)))

    @staticmethod
    def _sum_losses(losses: Dict[str, Tensor]) -> Tensor:
        """Sum the entries the runner sums (keys containing ``loss``)."""
        return sum(
            value.sum() for name, value in losses.items() if 'loss' in name)

    def pseudo_label_statistics(self, pseudo_data_samples: SampleList,
                                target_data_samples: SampleList) -> dict:
        """Pseudo-label statistics for logging; never part of the loss.

        Args:
            pseudo_data_samples (list[:obj:`DetDataSample`]): Teacher
                pseudo-labels per image.
            target_data_samples (list[:obj:`DetDataSample`]): Target-real
                samples; their ``gt_instances``, if any, are analysis labels.

        Returns:
            dict[str, Tensor]: ``distill.num_pseudo`` (mean pseudo boxes per
            image); ``distill.pseudo_precision`` when there are pseudo boxes
            and ``distill.pseudo_recall`` when there are analysis labels,
            both class-aware at ``semi_train_cfg.analysis_iou_thr``.
        """
        pseudo = [s.gt_instances for s in pseudo_data_samples]
        num_pseudo = sum(len(p) for p in pseudo)
        device = pseudo[0].bboxes.device if pseudo else None
        stats = {
            'distill.num_pseudo':
            torch.tensor(num_pseudo / max(len(pseudo), 1), device=device)
        }
        gts = [
            s.gt_instances if hasattr(s, 'gt_instances') else InstanceData()
            for s in target_data_samples
        ]
        num_gt = sum(len(g) for g in gts)
        if num_gt == 0:
            return stats
        num_matched = sum(
            self._count_matches(p, g, self.semi_train_cfg.analysis_iou_thr)
            for p, g in zip(pseudo, gts))
        if num_pseudo > 0:
            stats['distill.pseudo_precision'] = torch.tensor(
                num_matched / num_pseudo, device=device)
        stats['distill.pseudo_recall'] = torch.tensor(
            num_matched / num_gt, device=device)
        return stats

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
