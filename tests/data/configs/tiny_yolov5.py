# A plain mmyolo YOLOv5 shrunk for CPU tests: 64 px, 2 classes, batch 2.
# ``data_root`` is filled in by the tests (``--cfg-options``).
_base_ = 'mmyolo::yolov5/yolov5_s-v61_syncbn_8xb16-300e_coco.py'

default_scope = 'mmssda'
data_root = ''
img_scale = (64, 64)
deepen_factor = 0.33
widen_factor = 0.125
num_classes = 2
metainfo = dict(classes=('square', 'disc'))

model = dict(
    backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
    neck=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
    bbox_head=dict(
        head_module=dict(num_classes=num_classes, widen_factor=widen_factor),
        loss_cls=dict(loss_weight=0.5 * (num_classes / 80))))

# mmyolo's train pipeline at 64 px, without its mmdet.Albu: albumentations
# draws from its own generator, which a checkpoint cannot restore, and the
# resume-equality tests train with this config.
pre_transform = _base_.pre_transform
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/'),
        filter_cfg=dict(filter_empty_gt=False, min_size=0),
        pipeline=[
            *pre_transform,
            dict(
                type='Mosaic',
                img_scale=img_scale,
                pad_val=114.0,
                pre_transform=pre_transform),
            dict(
                type='YOLOv5RandomAffine',
                max_rotate_degree=0.0,
                max_shear_degree=0.0,
                scaling_ratio_range=(0.5, 1.5),
                border=(-img_scale[0] // 2, -img_scale[1] // 2),
                border_val=(114, 114, 114)),
            dict(type='YOLOv5HSVRandomAug'),
            dict(type='mmdet.RandomFlip', prob=0.5),
            dict(
                type='mmdet.PackDetInputs',
                meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                           'flip', 'flip_direction'))
        ]))

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='YOLOv5KeepRatioResize', scale=img_scale),
    dict(
        type='LetterResize',
        scale=img_scale,
        allow_scale_up=False,
        pad_val=dict(img=114)),
    dict(type='LoadAnnotations', with_bbox=True, _scope_='mmdet'),
    dict(
        type='mmdet.PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'pad_param'))
]
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/train.json',
        data_prefix=dict(img='images/'),
        batch_shapes_cfg=None,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/train.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(
    param_scheduler=dict(max_epochs=1),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        _scope_='mmssda',  # mmyolo's base config sets 'mmyolo'
        interval=1,
        save_best=None),
    logger=dict(interval=1))
env_cfg = dict(cudnn_benchmark=False)
