# SSDA-YOLO's published City -> Foggy setting: YOLOv5-L, 960 px, batch 24 on
# 4 GPUs, 200 epochs, lambda 0.005, alpha 2.0, from COCO-pretrained weights.
# The original gives each rank `batch_size // WORLD_SIZE` = 6 source pairs
# AND 6 target pairs per iteration (two dataloaders of that batch size), so
# one GPU holds 6 + 6 pairs. Its epoch is (source batches + target batches)
# // 2 = ceil(2975 / 24) = 124 iterations on 4 GPUs: 200 epochs are 24800
# iterations, warmup max(3 epochs, 1000 iterations) = 1000. Run it on 4 GPUs:
#   bash tools/dist_train.sh configs/ssda_yolov5l_city2foggy_960.py 4
# (on fewer GPUs the same iterations are fewer epochs).
_base_ = './ssda_yolov5s_city2foggy.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

img_scale = (960, 960)
deepen_factor = 1.0
widen_factor = 1.0
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['yolov5_l']

source_per_batch = 6
target_per_batch = 6
max_iters = 24800
val_interval = 1240  # every 10 epochs
distill_weight = 0.005  # lambda
consistency_weight = 2.0  # alpha

model = dict(
    detector=dict(
        backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
        neck=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
        bbox_head=dict(head_module=dict(widen_factor=widen_factor))),
    distill_loss=dict(loss_weight=distill_weight),
    consistency_loss=dict(loss_weight=consistency_weight))

train_dataloader = dict(
    batch_size=source_per_batch + target_per_batch,
    sampler=dict(
        source_per_batch=source_per_batch,
        target_per_batch=target_per_batch))
optim_wrapper = dict(
    optimizer=dict(batch_size_per_gpu=source_per_batch + target_per_batch))

train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=1000),
    checkpoint=dict(interval=val_interval))

# Mosaic, affine border, test resize, batch shapes and loss_obj weight
# (960/640)^2 from img_scale.
mmssda_utils.scale_recipe(vars())
