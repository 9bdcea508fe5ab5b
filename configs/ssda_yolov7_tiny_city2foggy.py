# The SSDA-YOLO recipe around mmyolo's YOLOv7-tiny, by config alone: Cityscapes
# -> Foggy Cityscapes, 640 px, the data, pipeline and schedule of
# ssda_yolov5s_city2foggy.py (see the data config). The detector is the one of
# mmyolo's own yolov7_tiny_syncbn_fast_8x16b-300e_coco config, with the
# recipe's classes. YOLOv7's head scores a box by objectness x class like
# YOLOv5's (ObjectnessHeadAdapter, docs/detectors.md).
_base_ = './_base_/datasets/city2foggy_yolo_txt.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

# mmdet's DetDataPreprocessor with the detector's normalisation, the
# backbone's ImageNet init dropped (mmssda.utils.zoo_detector)
detector, data_preprocessor = mmssda_utils.zoo_detector(
    'mmyolo::yolov7/yolov7_tiny_syncbn_fast_8x16b-300e_coco.py')

# mmyolo's COCO-pretrained YOLOv7-tiny.
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['yolov7_tiny']
model = dict(
    detector=detector,
    data_preprocessor=dict(data_preprocessor=data_preprocessor))

mmssda_utils.scale_recipe(vars())
