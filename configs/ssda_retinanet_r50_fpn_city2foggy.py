# The SSDA-YOLO recipe around mmdet's RetinaNet R50-FPN, by config alone:
# Cityscapes -> Foggy Cityscapes, 640 px, the data, pipeline and schedule of
# ssda_yolov5s_city2foggy.py (see the data config). The detector is the one
# of mmdet's own retinanet_r50_fpn_1x_coco config, with the recipe's classes,
# built in mmdet's scope (_scope_='mmdet'). RetinaNet's head has no
# objectness: pseudo-labels are the boxes whose class score passes 0.5
# (ClassScoreHeadAdapter, docs/detectors.md).
_base_ = './_base_/datasets/city2foggy_yolo_txt.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

# mmdet's own preprocessor, the detector in mmdet's scope, the backbone's
# ImageNet init dropped (mmssda.utils.zoo_detector)
detector, data_preprocessor = mmssda_utils.zoo_detector(
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py')

# mmdet's COCO-pretrained RetinaNet R50-FPN (1x schedule).
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['retinanet_r50_fpn']
model = dict(
    detector=detector,
    data_preprocessor=dict(data_preprocessor=data_preprocessor))

mmssda_utils.scale_recipe(vars())
