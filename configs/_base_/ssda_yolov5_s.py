# SSDA-YOLO (Zhou et al., CVIU 2023) on mmyolo's YOLOv5-s: the training
# recipe. The data configs in ./datasets/ add the source and target sets.
_base_ = 'mmyolo::yolov5/yolov5_s-v61_syncbn_8xb16-300e_coco.py'
# Functions and modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

default_scope = 'mmssda'
custom_imports = dict(
    imports=['mmssda.datasets', 'mmssda.engine', 'mmssda.models'],
    allow_failed_imports=False)

# ========================Frequently modified parameters======================
# The size- and class-dependent values (mosaic and affine borders, test
# resize and letterbox, batch shapes, loss_obj weight (img/640)^2, loss_cls
# weight num_classes/80, head num_classes) follow these two through
# mmssda.utils.scale_recipe (called at the end of this file). A child config
# that changes them ends with `scale_recipe(vars())` (see
# configs/_base_/datasets/fog_shapes.py); training refuses a config whose
# values do not follow them (e.g. `--cfg-options img_scale=...`).
img_scale = (640, 640)  # width, height
num_classes = 80  # set by the data configs
source_per_batch = 8  # source pairs per GPU and iteration
target_per_batch = 8  # target pairs per GPU and iteration
max_iters = 60000
# COCO-pretrained YOLOv5-s from mmyolo (student and teacher both start from
# it; the class-count dependent head layers are re-initialised). Without
# network tools/train.py says where to put the file; train from scratch on
# purpose with `--cfg-options load_from=None`.
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['yolov5_s']
val_interval = 2000
burn_in_iters = 0  # source-only iterations before distillation starts
base_lr = 0.01
lr_factor = 0.2  # one-cycle cosine to base_lr * lr_factor (YOLOv5 lrf)
warmup_iters = 1000
train_num_workers = 8

# Pseudo-labels: teacher on target-fake, then these thresholds.
pseudo_label_cfg = dict(
    multi_label=True,
    nms_pre=30000,
    score_thr=0.5,
    nms=dict(type='nms', iou_threshold=0.3),
    max_per_img=20)
distill_weight = 0.005  # lambda
consistency_weight = 2.0  # alpha
teacher_momentum = 0.01  # teacher = 0.99 * teacher + 0.01 * student

# ===============================Model========================================
detector = _base_.model
model = dict(
    _delete_=True,
    type='SSDADetector',
    detector=detector,
    data_preprocessor=dict(
        type='mmdet.MultiBranchDataPreprocessor',
        data_preprocessor=detector.data_preprocessor),
    distill_loss=dict(
        type='PseudoLabelDistillLoss', loss_weight=distill_weight),
    consistency_loss=dict(
        type='ConsistencyLoss', loss_weight=consistency_weight),
    semi_train_cfg=dict(
        freeze_teacher=True,
        supervised_streams=['source_real', 'source_fake'],
        pseudo_label_cfg=pseudo_label_cfg,
        analysis_iou_thr=0.5),
    semi_test_cfg=dict(predict_on='student', extract_feat_on='student'),
    # the same computation in another memory layout: 9% less time per SSDA
    # iteration on CPU (docs/performance.md)
    channels_last=True)

# ===============================Data=========================================
# One sample is a (real, fake) pair; both images get the same geometry and
# colour gains. The data configs put this pipeline on their PairedDatasets.
paired_pre_transform = [
    dict(type='LoadPairedImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True)
]
train_pipeline = [
    *paired_pre_transform,
    dict(
        type='PairedMosaic', pad_val=114.0,
        pre_transform=paired_pre_transform),  # img_scale: scale_recipe
    dict(
        type='PairedTransform',
        transforms=[
            dict(
                type='YOLOv5RandomAffine',
                max_rotate_degree=0.0,
                max_shear_degree=0.0,
                max_translate_ratio=0.1,
                scaling_ratio_range=(0.5, 1.5),
                border_val=(114, 114, 114))  # border: scale_recipe
        ]),
    dict(type='PairedYOLOv5HSVRandomAug'),
    dict(
        type='PairedTransform',
        transforms=[dict(type='mmdet.RandomFlip', prob=0.5)]),
    dict(
        type='PackPairedDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'flip',
                   'flip_direction'))
]
train_dataloader = dict(
    _delete_=True,
    batch_size=source_per_batch + target_per_batch,
    num_workers=train_num_workers,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(
        type='MultiDomainSampler',
        source_per_batch=source_per_batch,
        target_per_batch=target_per_batch),
    collate_fn=dict(type='pseudo_collate'),
    # datasets: [source PairedDataset, target PairedDataset], see ./datasets
    dataset=dict(type='ConcatDataset', datasets=[]))

# Target validation: COCO bbox metrics and per-class AP@0.5 (VOC style,
# what DA papers report; the checkpoint hook keeps the best student by it).
# A data config sets the CocoMetric's ann_file where it has COCO labels.
val_evaluator = [
    dict(type='mmdet.CocoMetric', metric='bbox', classwise=True),
    dict(type='mmdet.VOCMetric', metric='mAP', iou_thrs=[0.5],
         eval_mode='area')
]
test_evaluator = val_evaluator
# The test pipeline also packs the ground truth (`instances`): a CocoMetric
# without ann_file (VOC, YOLO txt labels) reads it from there.
test_pack_inputs = _base_.test_pipeline[-1]  # mmdet.PackDetInputs
test_pipeline = [
    *_base_.test_pipeline[:-1],
    dict(
        test_pack_inputs,
        meta_keys=(*test_pack_inputs.meta_keys, 'instances'))
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# ===============================Schedule=====================================
# A NaN/Inf loss or gradient skips the step (NonFiniteLossHook reports it and
# stops after too many in a row). The mmyolo base scopes it to mmyolo.
optim_wrapper = dict(
    type='mmssda.NonFiniteSkipOptimWrapper',
    optimizer=dict(
        lr=base_lr,
        batch_size_per_gpu=source_per_batch + target_per_batch,
        # multi-tensor SGD: the same update; torch picks it by itself on
        # CUDA only
        foreach=True),
    constructor='StudentOptimizerConstructor')

# Resumes the sampler and random states exactly, without replaying data.
train_cfg = dict(
    _delete_=True,
    type='SSDAIterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval)
# Evaluates the teacher and the student (the student-EMA: StudentEMAHook
# swaps it in) on one pass over the data and logs `teacher/...` and
# `student/...`.
val_cfg = dict(_delete_=True, type='SharedBatchTeacherStudentValLoop')
test_cfg = dict(_delete_=True, type='TeacherStudentTestLoop')

default_hooks = dict(
    param_scheduler=dict(
        _delete_=True,
        type='YOLOv5IterParamSchedulerHook',
        scheduler_type='cosine',
        lr_factor=lr_factor,
        warmup_iters=warmup_iters,
        warmup_bias_lr=0.1,
        warmup_momentum=0.8),
    # writes each checkpoint atomically, deletes old ones only after it
    checkpoint=dict(
        type='AtomicCheckpointHook',
        _scope_='mmssda',  # mmyolo's base config sets 'mmyolo'
        by_epoch=False,
        interval=val_interval,
        save_best='student/pascal_voc/mAP',  # target AP50, student-EMA
        rule='greater',
        max_keep_ckpts=3),
    # validation scalars are logged at their iteration, not at 'epoch 0'
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False))
# mmyolo has no log-processor registry: build MMEngine's directly (no
# fallback warning)
log_processor = dict(by_epoch=False, _scope_='mmengine')

# mmyolo's EMAHook would average the whole teacher-student wrapper: replaced.
custom_hooks = [
    dict(
        type='SSDAMeanTeacherHook',
        momentum=teacher_momentum,
        interval=1,
        update_buffers=True,
        burn_in_iters=burn_in_iters),
    # warns once if, after burn-in, the teacher gives (almost) no
    # pseudo-labels, with the numbers and what to change
    dict(type='PseudoLabelHealthHook', min_pseudo_per_img=0.1, window=100),
    dict(
        type='StudentEMAHook',
        ema_type='ForeachExpMomentumEMA',  # ExpMomentumEMA, fused update
        momentum=0.0001,
        gamma=2000,
        update_buffers=True,
        strict_load=False,
        priority=49),
    dict(type='NonFiniteLossHook', max_consecutive=5),
    dict(type='RandomStateHook')
]

# Per-branch losses, pseudo-labels per image and their precision/recall (when
# the target set has labels) go to vis_data/scalars.json and to TensorBoard:
#   tensorboard --logdir work_dirs/<config name>
visualizer = dict(
    vis_backends=[
        dict(type='LocalVisBackend'),
        dict(type='TensorboardVisBackend')
    ])

# Every size- and class-dependent value from img_scale and num_classes.
mmssda_utils.scale_recipe(vars())
