"""The detector of an mmyolo/mmdet model-zoo config, made ready for
:class:`SSDADetector` in one place for every shipped detector config."""
from typing import Tuple

from mmengine.config import ConfigDict
from mmengine.hub import get_config


def zoo_detector(config: str) -> Tuple[dict, dict]:
    """The model of the model-zoo config ``config`` (``'mmyolo::...'`` or
    ``'mmdet::...'``) as the detector of an SSDA config, and its data
    preprocessor.

    The preprocessor is mmdet's ``DetDataPreprocessor``: for mmyolo
    configs with the detector's normalisation (mmyolo's
    ``YOLOv5DetDataPreprocessor`` wants packed labels, which the paired
    pipeline does not produce); for mmdet configs their own, scoped. An
    mmdet detector is built in mmdet's scope (``_scope_='mmdet'``:
    mmssda's registry resolves unscoped names through mmyolo's). The
    backbone's ImageNet ``init_cfg`` is dropped: the configs load COCO
    weights.

    Returns:
        tuple[dict, dict]: ``detector`` (with ``_delete_=True``, replacing
        the base config's) and ``data_preprocessor``.
    """
    model = get_config(config).model
    source = model.data_preprocessor
    if config.startswith('mmdet::'):
        data_preprocessor = ConfigDict(
            source, type='mmdet.DetDataPreprocessor')
        detector = ConfigDict(model, _delete_=True, _scope_='mmdet')
    else:
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
