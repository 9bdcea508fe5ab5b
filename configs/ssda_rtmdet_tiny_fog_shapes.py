# SSDA-YOLO on the built-in clear -> fog benchmark with mmyolo's RTMDet-tiny
# instead of YOLOv5-n: the detector of mmyolo's own rtmdet_tiny config
# (deepen 0.167, widen 0.375, from scratch) with the benchmark's 3 classes;
# data, pipeline, schedule and SSDA recipe are those of
# ssda_yolov5n_fog_shapes.py. RTMDet's head has no objectness: pseudo-labels
# are the boxes whose class score passes the recipe's threshold
# (ClassScoreHeadAdapter, docs/detectors.md). `python tools/demo.py
# --detector rtmdet` runs the demo's comparison with it.
_base_ = './ssda_yolov5n_fog_shapes.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

detector, data_preprocessor = mmssda_utils.zoo_detector(
    'mmyolo::rtmdet/rtmdet_tiny_syncbn_fast_8xb32-300e_coco.py')
model = dict(
    detector=detector,
    data_preprocessor=dict(data_preprocessor=data_preprocessor))

mmssda_utils.scale_recipe(vars())
