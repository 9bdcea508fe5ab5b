# SSDA-YOLO with YOLOv5-s, 640 px, Sim10k -> Cityscapes (car). Data layout
# and the paths to edit: configs/_base_/datasets/sim10k2city.py.
# 8 source + 8 target pairs per GPU: one pass over the 10000 Sim10k images
# is 1250 iterations on one GPU, so 50000 iterations are 40 passes, the
# warmup 3 passes.
_base_ = './_base_/datasets/sim10k2city.py'

max_iters = 50000
val_interval = 2500
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=3750),
    checkpoint=dict(interval=val_interval))

# Starts from mmyolo's COCO-pretrained YOLOv5-s (the recipe's load_from,
# loaded into student and teacher); `--cfg-options load_from=None` trains
# from scratch.
