# SSDA-YOLO on the built-in clear -> fog benchmark (the demo's main run).
# The demo (tools/demo.py) starts it from a source-only burn-in checkpoint
# (load_from), the protocol Adaptive Teacher uses, so that a CPU-sized run
# has a teacher worth distilling from.
_base_ = './_base_/datasets/fog_shapes.py'

source_per_batch = 8
target_per_batch = 8
max_iters = 300
val_interval = 100
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=0),
    checkpoint=dict(interval=val_interval),
    logger=dict(interval=20))
