# The SSDA-YOLO recipe around mmyolo's RTMDet-s, by config alone: Cityscapes ->
# Foggy Cityscapes, 640 px, the data, pipeline and schedule of
# ssda_yolov5s_city2foggy.py (see the data config). The detector is the one of
# mmyolo's own rtmdet_s config, with the recipe's classes; RTMDet's head has no
# objectness: pseudo-labels are the boxes whose class score passes 0.5
# (ClassScoreHeadAdapter, docs/detectors.md).
_base_ = './_base_/datasets/city2foggy_yolo_txt.py'
# Modules are not config keys (MMEngine drops them).
import mmengine.hub as mmengine_hub  # noqa: E402
import mmssda.utils as mmssda_utils  # noqa: E402

_detector_base = mmengine_hub.get_config(
    'mmyolo::rtmdet/rtmdet_s_syncbn_fast_8xb32-300e_coco.py')
# mmyolo's YOLOv5DetDataPreprocessor wants packed labels, which the paired
# pipeline does not produce: mmdet's, with RTMDet's normalisation.
data_preprocessor = dict(
    type='mmdet.DetDataPreprocessor',
    mean=_detector_base.model.data_preprocessor.get('mean'),
    std=_detector_base.model.data_preprocessor.get('std'),
    bgr_to_rgb=_detector_base.model.data_preprocessor.get('bgr_to_rgb', False))
detector = dict(_detector_base.model, _delete_=True)
detector.update(
    data_preprocessor=data_preprocessor,
    # the COCO weights below replace the ImageNet backbone init
    backbone=dict(detector['backbone'], init_cfg=None))
del _detector_base

# mmyolo's COCO-pretrained RTMDet-s.
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['rtmdet_s']
model = dict(
    detector=detector,
    data_preprocessor=dict(data_preprocessor=data_preprocessor))

mmssda_utils.scale_recipe(vars())
