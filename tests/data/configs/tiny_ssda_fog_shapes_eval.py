# The demo's SSDA-YOLO recipe (configs/ssda_yolov5n_fog_shapes.py) shrunk
# for CPU tests of teacher-student training and evaluation: widen 0.125,
# 2 source + 2 target pairs per iteration, data loaded in the main process,
# validation at the end, a checkpoint every 2 iterations, seeded and
# deterministic. The pseudo-label threshold is 0 so that an untrained teacher
# gives pseudo-labels and the distillation branch really trains the student.
# Like the recipe it reads data/fog_shapes relative to the working directory
# (mmssda.datasets.generate_fog_shapes writes it).
_base_ = '../../../configs/ssda_yolov5n_fog_shapes.py'

widen_factor = 0.125
source_per_batch = 2
target_per_batch = 2
max_iters = 4

model = dict(
    detector=dict(
        backbone=dict(widen_factor=widen_factor),
        neck=dict(widen_factor=widen_factor),
        bbox_head=dict(head_module=dict(widen_factor=widen_factor))),
    semi_train_cfg=dict(pseudo_label_cfg=dict(score_thr=0.0)))

train_dataloader = dict(
    batch_size=source_per_batch + target_per_batch,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    sampler=dict(
        source_per_batch=source_per_batch,
        target_per_batch=target_per_batch))
optim_wrapper = dict(
    optimizer=dict(batch_size_per_gpu=source_per_batch + target_per_batch))

train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
val_dataloader = dict(batch_size=4)
test_dataloader = val_dataloader

default_hooks = dict(
    checkpoint=dict(interval=2, save_best=None, max_keep_ckpts=-1),
    logger=dict(interval=1))
randomness = dict(seed=0, deterministic=True)
