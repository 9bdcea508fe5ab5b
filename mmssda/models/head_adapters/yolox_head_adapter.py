from typing import List, Sequence

import torch
import torch.nn as nn
from mmdet.structures import SampleList
from mmengine.structures import InstanceData
from mmyolo.models.dense_heads import YOLOXHead
from torch import Tensor

from mmssda.registry import TASK_UTILS

from .objectness_head_adapter import ObjectnessHeadAdapter


@TASK_UTILS.register_module()
class YOLOXHeadAdapter(ObjectnessHeadAdapter):
    """mmyolo's YOLOX head: objectness x class, labels packed.

    The scores are those of :class:`ObjectnessHeadAdapter` (one prior per
    cell). ``YOLOXHead.loss_by_feat`` takes the labels of the whole batch
    as one (K, 6) tensor ``[image index, label, x1, y1, x2, y2]`` (mmyolo's
    ``bboxes_labels``), not per-image :obj:`InstanceData`; this adapter
    packs them for the head's loss, the pseudo-labels included.

    Example:
        >>> model = dict(type='SSDADetector',
        ...              head_adapter=dict(type='YOLOXHeadAdapter'))
    """

    head_types = (YOLOXHead, )

    @staticmethod
    def pack_instances(batch_gt_instances: Sequence[InstanceData]) -> Tensor:
        """Per-image labels -> one (K, 6) ``bboxes_labels`` tensor.

        Args:
            batch_gt_instances (list[:obj:`InstanceData`]): ``bboxes``
                (K_i, 4) and ``labels`` (K_i, ) per image.

        Returns:
            Tensor: (sum K_i, 6) rows ``[i, label, x1, y1, x2, y2]``.
        """
        rows = []
        for i, gt in enumerate(batch_gt_instances):
            bboxes = gt.bboxes
            bboxes = getattr(bboxes, 'tensor', bboxes).float()
            index = bboxes.new_full((len(bboxes), 1), i)
            rows.append(
                torch.cat([index, gt.labels.to(bboxes)[:, None], bboxes], 1))
        return torch.cat(rows, 0)

    def pack_data_samples(self, batch_data_samples: SampleList) -> dict:
        """``dict(bboxes_labels=(K, 6) tensor, img_metas=[...])``."""
        return dict(
            bboxes_labels=self.pack_instances(
                [s.gt_instances for s in batch_data_samples]),
            img_metas=[s.metainfo for s in batch_data_samples])

    def loss_by_feat(self, head: nn.Module, outs: Sequence[List[Tensor]],
                     batch_gt_instances: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict]) -> dict:
        """``head.loss_by_feat`` with the labels packed."""
        return head.loss_by_feat(*outs,
                                 self.pack_instances(batch_gt_instances),
                                 list(batch_img_metas))
