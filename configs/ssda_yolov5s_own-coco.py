# SSDA-YOLO with YOLOv5-s, 640 px, on your own data with COCO json labels:
# set the paths and class names at the top of
# configs/_base_/datasets/own_coco.py (docs/own_data.md), then
#   python tools/train.py configs/ssda_yolov5s_own-coco.py
# 8 source + 8 target pairs per GPU and iteration. One pass over N source
# images is ceil(N / (8 * GPUs)) iterations: set max_iters to the passes you
# want times that (the recipe's 60000 are ~100 passes over 4800 images on
# one GPU), val_interval to a few passes and the warmup to about 3 passes
# (at least 1000 iterations).
_base_ = './_base_/datasets/own_coco.py'

max_iters = 60000
val_interval = 2000
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=1000),
    checkpoint=dict(interval=val_interval))

# Starts from mmyolo's COCO-pretrained YOLOv5-s (the recipe's load_from,
# loaded into student and teacher); `--cfg-options load_from=None` trains
# from scratch.
