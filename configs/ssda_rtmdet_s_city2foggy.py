# The SSDA-YOLO recipe around mmyolo's RTMDet-s, by config alone: Cityscapes ->
# Foggy Cityscapes, 640 px, the data, pipeline and schedule of
# ssda_yolov5s_city2foggy.py (see the data config). The detector is the one of
# mmyolo's own rtmdet_s config, with the recipe's classes; RTMDet's head has no
# objectness: pseudo-labels are the boxes whose class score passes 0.5
# (ClassScoreHeadAdapter, docs/detectors.md).
_base_ = './_base_/datasets/city2foggy_yolo_txt.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

# mmdet's DetDataPreprocessor with the detector's normalisation, the
# backbone's ImageNet init dropped (mmssda.utils.zoo_detector)
detector, data_preprocessor = mmssda_utils.zoo_detector(
    'mmyolo::rtmdet/rtmdet_s_syncbn_fast_8xb32-300e_coco.py')

# mmyolo's COCO-pretrained RTMDet-s.
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['rtmdet_s']
model = dict(
    detector=detector,
    data_preprocessor=dict(data_preprocessor=data_preprocessor))

mmssda_utils.scale_recipe(vars())
