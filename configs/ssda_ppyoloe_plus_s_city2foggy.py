# The SSDA-YOLO recipe around mmyolo's PPYOLOE+-s, by config alone:
# Cityscapes -> Foggy Cityscapes, 640 px, the data, pipeline and schedule of
# ssda_yolov5s_city2foggy.py (see the data config). The detector is the one of
# mmyolo's own ppyoloe_plus_s_fast_8xb8-80e_coco config, with the recipe's
# classes. PPYOLOE's head has no objectness (pseudo-labels: class score >=
# 0.5) and switches from the ATSS to the task-aligned assigner at epoch 30:
# semi_train_cfg.iters_per_epoch turns iterations into that epoch
# (EpochSwitchHeadAdapter, docs/detectors.md). PPYOLOE's batch-level random
# resize is not used (mmdet's DetDataPreprocessor, see zoo_detector).
_base_ = './_base_/datasets/city2foggy_yolo_txt.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

# mmdet's DetDataPreprocessor with the detector's normalisation, the
# backbone's ImageNet init dropped (mmssda.utils.zoo_detector)
detector, data_preprocessor = mmssda_utils.zoo_detector(
    'mmyolo::ppyoloe/ppyoloe_plus_s_fast_8xb8-80e_coco.py')

# mmyolo's COCO-pretrained PPYOLOE+-s.
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['ppyoloe_plus_s']
model = dict(
    detector=detector,
    data_preprocessor=dict(data_preprocessor=data_preprocessor),
    # 2975 Cityscapes train images / 8 source pairs per batch
    semi_train_cfg=dict(iters_per_epoch=372))

mmssda_utils.scale_recipe(vars())
