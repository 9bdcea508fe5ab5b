# SSDA-YOLO on the built-in clear -> fog benchmark with mmyolo's RTMDet-tiny
# instead of YOLOv5-n: the detector of mmyolo's own rtmdet_tiny config
# (deepen 0.167, widen 0.375, from scratch) with the benchmark's 3 classes,
# trained with RTMDet's own optimizer (below); data, pipeline, schedule length
# and SSDA recipe are those of ssda_yolov5n_fog_shapes.py. RTMDet's head has
# no objectness: pseudo-labels are the boxes whose class score passes the
# recipe's threshold (ClassScoreHeadAdapter, docs/detectors.md).
# `python tools/demo.py --detector rtmdet` runs the demo's comparison with it.
_base_ = './ssda_yolov5n_fog_shapes.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

detector, data_preprocessor = mmssda_utils.zoo_detector(
    'mmyolo::rtmdet/rtmdet_tiny_syncbn_fast_8xb32-300e_coco.py')
model = dict(
    detector=detector,
    data_preprocessor=dict(data_preprocessor=data_preprocessor))

# RTMDet's optimizer, as mmyolo trains it: AdamW, weight decay 0.05 on the
# conv weights only (StudentOptimizerConstructor's groups), and a learning
# rate of 0.004 at a batch of 256 scaled by the square root of the batch,
# Adam's scaling rule: 0.004 * sqrt(16 / 256) = 0.001. YOLOv5's SGD (lr 0.01,
# momentum 0.937) trains this RTMDet from scratch too, but its student swings
# on the target between evaluations (docs/benchmarks.md, "Other detectors").
# Every group warms up from 0 (YOLOv5's warmup starts the biases at 0.1, an
# SGD setting).
optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.004 *
        (_base_.optim_wrapper.optimizer.batch_size_per_gpu / 256)**0.5,
        weight_decay=0.05,
        batch_size_per_gpu=_base_.optim_wrapper.optimizer.batch_size_per_gpu,
        foreach=True))
default_hooks = dict(param_scheduler=dict(warmup_bias_lr=0.))

mmssda_utils.scale_recipe(vars())
