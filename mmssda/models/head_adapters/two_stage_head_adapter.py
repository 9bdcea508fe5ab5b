import copy
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.detectors import TwoStageDetector
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

from mmssda.registry import TASK_UTILS

from .base_head_adapter import BaseHeadAdapter


@TASK_UTILS.register_module()
class TwoStageHeadAdapter(BaseHeadAdapter):
    """Two-stage detectors (mmdet's Faster R-CNN and its relatives).

    An RPN and an RoI head: no dense per-prior outputs, so only the hard
    pseudo-label route applies (soft distillation and
    ``fused_student_forward`` are refused when the model is built).

    - Classes: ``roi_head.bbox_head.num_classes``.
    - Pseudo-labels: ``teacher.predict(..., rescale=False)`` (mmdet's
      ``SemiBaseDetector`` route) with the RoI head's ``test_cfg``
      updated by ``pseudo_label_cfg`` (``score_thr``, ``nms``,
      ``max_per_img``; keys the RoI head does not read are ignored), on
      fresh samples (the inputs are not modified). The RoI head runs with
      ``score_thr=0``; the boxes scoring above the threshold are kept
      afterwards (the same boxes: its NMS is per class and keeps the
      highest scores), and each image's top detection score, before the
      threshold, feeds the ``teacher_score_p*`` statistics.
    - Loss: the detector's own (RPN and RoI losses; RPN's are lists, one
      per level).

    Example:
        >>> model = dict(type='SSDADetector',
        ...              detector=dict(_scope_='mmdet',
        ...                            type='FasterRCNN', ...),
        ...              head_adapter=dict(type='TwoStageHeadAdapter'))
    """

    head_types = (TwoStageDetector, )
    family = 'two_stage'
    has_dense_outputs = False

    def head(self, detector: nn.Module) -> nn.Module:
        """``detector.roi_head.bbox_head``."""
        return detector.roi_head.bbox_head

    def head_name(self, detector: nn.Module) -> str:
        return (f'{type(detector).__name__} '
                f'({type(detector.roi_head).__name__})')

    def check(self, detector: nn.Module, semi_train_cfg: ConfigDict) -> None:
        """Refuse ``fused_student_forward`` (RPN and RoI losses need the
        detector's own forward)."""
        if semi_train_cfg.get('fused_student_forward', False):
            raise ValueError(
                'semi_train_cfg.fused_student_forward is not supported for '
                f'the two-stage {self.head_name(detector)}: set it to False')

    def top_scores(self, head, outs) -> Tensor:
        raise TypeError(f'{type(self).__name__}: a two-stage detector has '
                        'no dense outputs; top scores come from '
                        'predict_pseudo_labels')

    def predict_pseudo_labels(
            self, detector: nn.Module, batch_inputs: Tensor,
            batch_img_metas: List[dict], cfg: ConfigDict
    ) -> Tuple[List[InstanceData], Optional[tuple], Optional[Tensor]]:
        """``detector.predict`` with ``cfg`` (see the class docstring).

        Returns:
            tuple: Results per image, None (no dense outputs), top scores
            (N, ) (0 for an image without any detection).
        """
        roi_head = detector.roi_head
        test_cfg = roi_head.test_cfg
        run_cfg = ConfigDict(copy.deepcopy(dict(test_cfg or {})))
        run_cfg.update(
            {k: copy.deepcopy(v)
             for k, v in cfg.items() if k in ('nms', 'max_per_img')})
        run_cfg.score_thr = 0.
        samples = [DetDataSample(metainfo=meta) for meta in batch_img_metas]
        roi_head.test_cfg = run_cfg
        try:
            predicted = detector.predict(batch_inputs, samples, rescale=False)
        finally:
            roi_head.test_cfg = test_cfg
        score_thr = cfg.get('score_thr', 0.)
        results, tops = [], []
        for sample in predicted:
            pred = sample.pred_instances
            tops.append(pred.scores.max() if len(pred) else
                        pred.scores.new_zeros(()))
            results.append(pred[pred.scores > score_thr])
        top = torch.stack(tops).float() if tops else \
            batch_inputs.new_zeros((0, ))
        return results, None, top

    def loss(self,
             detector: nn.Module,
             batch_inputs: Tensor,
             batch_data_samples,
             feats=None) -> dict:
        """The detector's own loss (``feats`` must be None)."""
        if feats is not None:
            raise ValueError('TwoStageHeadAdapter computes the loss from '
                             'images, not features')
        return detector.loss(batch_inputs, batch_data_samples)
