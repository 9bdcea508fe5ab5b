# SSDA-YOLO with YOLOv5-s, Cityscapes -> Foggy Cityscapes, 640 px.
# 8 source + 8 target pairs per GPU; one pass over the 2975 source images is
# ~372 iterations, so 75000 iterations are ~200 passes (the paper's 200
# epochs) and the warmup is max(3 passes, 1000 iterations).
_base_ = './_base_/datasets/city2foggy.py'

max_iters = 75000
val_interval = 2500
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=1116),
    checkpoint=dict(interval=val_interval))

# Starts from mmyolo's COCO-pretrained YOLOv5-s (the recipe's load_from,
# loaded into student and teacher); `--cfg-options load_from=None` trains
# from scratch.
