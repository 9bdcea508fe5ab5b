"""The detector of an mmyolo/mmdet model-zoo config, made ready for
:class:`SSDADetector` in one place for every shipped detector config."""
from typing import Tuple

from mmengine.config import ConfigDict
from mmengine.hub import get_config


def zoo_detector(config: str) -> Tuple[dict, dict]:
    """The model of the model-zoo config ``config`` (``'mmyolo::...'``) as
    the detector of an SSDA config, and its data preprocessor.

    The preprocessor is mmdet's ``DetDataPreprocessor`` with the detector's
    normalisation: mmyolo's ``YOLOv5DetDataPreprocessor`` wants packed
    labels, which the paired pipeline does not produce. The backbone's
    ImageNet ``init_cfg`` is dropped: the configs load COCO weights.

    Returns:
        tuple[dict, dict]: ``detector`` (with ``_delete_=True``, replacing
        the base config's) and ``data_preprocessor``.
    """
    model = get_config(config).model
    source = model.data_preprocessor
    data_preprocessor = ConfigDict(
        type='mmdet.DetDataPreprocessor',
        mean=source.get('mean'),
        std=source.get('std'),
        bgr_to_rgb=source.get('bgr_to_rgb', False))
    detector = ConfigDict(model, _delete_=True)
    detector.update(
        data_preprocessor=data_preprocessor,
        backbone=dict(detector['backbone'], init_cfg=None))
    return detector, data_preprocessor
