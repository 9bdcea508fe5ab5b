# SSDA-YOLO with YOLOv5-s, PASCAL VOC -> Clipart1k, 640 px.
# One pass over the 16551 VOC 07+12 images is ~2069 iterations at 8 source
# pairs per batch.
_base_ = './_base_/datasets/voc2clipart.py'

max_iters = 60000
val_interval = 2000
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=1000),
    checkpoint=dict(interval=val_interval))
