# The SSDA-YOLO recipe around mmyolo's YOLOv8-s, by config alone:
# Cityscapes -> Foggy Cityscapes, 640 px, read from the original SSDA-YOLO's
# YOLO txt layout (see the data config). YOLOv8's head has no objectness:
# pseudo-labels are the boxes whose class score passes 0.5. Schedule as in
# ssda_yolov5s_city2foggy.py.
_base_ = './_base_/datasets/city2foggy_yolo_txt.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

max_iters = 75000
val_interval = 2500
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=1116),
    checkpoint=dict(interval=val_interval))

deepen_factor = 0.33
widen_factor = 0.5
last_stage_out_channels = 1024
strides = [8, 16, 32]
norm_cfg = dict(type='BN', momentum=0.03, eps=0.001)
num_classes = _base_.num_classes
# mmyolo's COCO-pretrained YOLOv8-s.
load_from = mmssda_utils.MMYOLO_COCO_CHECKPOINTS['yolov8_s']

# YOLOv8's losses are about 30 times YOLOv5's: the paper's consistency
# term alpha * (L_sr - L_sf) ** 2 would outweigh the detection losses and
# push the smaller of the two up. Measured in YOLOv5's units (1.1 per
# stream: YOLOv5-n on the demo) and pulling only the larger loss down
# (ConsistencyLoss, docs/detectors.md).
model = dict(
    consistency_loss=dict(reference_loss=1.1, pull='worse'),
    detector=dict(
        _delete_=True,
        type='YOLODetector',
        data_preprocessor=_base_.detector.data_preprocessor,
        backbone=dict(
            type='YOLOv8CSPDarknet',
            arch='P5',
            last_stage_out_channels=last_stage_out_channels,
            deepen_factor=deepen_factor,
            widen_factor=widen_factor,
            norm_cfg=norm_cfg,
            act_cfg=dict(type='SiLU', inplace=True)),
        neck=dict(
            type='YOLOv8PAFPN',
            deepen_factor=deepen_factor,
            widen_factor=widen_factor,
            in_channels=[256, 512, last_stage_out_channels],
            out_channels=[256, 512, last_stage_out_channels],
            num_csp_blocks=3,
            norm_cfg=norm_cfg,
            act_cfg=dict(type='SiLU', inplace=True)),
        bbox_head=dict(
            type='YOLOv8Head',
            head_module=dict(
                type='YOLOv8HeadModule',
                num_classes=num_classes,
                in_channels=[256, 512, last_stage_out_channels],
                widen_factor=widen_factor,
                reg_max=16,
                norm_cfg=norm_cfg,
                act_cfg=dict(type='SiLU', inplace=True),
                featmap_strides=strides),
            prior_generator=dict(
                type='mmdet.MlvlPointGenerator', offset=0.5, strides=strides),
            bbox_coder=dict(type='DistancePointBBoxCoder'),
            loss_cls=dict(
                type='mmdet.CrossEntropyLoss',
                use_sigmoid=True,
                reduction='none',
                loss_weight=0.5),
            loss_bbox=dict(
                type='IoULoss',
                iou_mode='ciou',
                bbox_format='xyxy',
                reduction='sum',
                loss_weight=7.5,
                return_iou=False),
            loss_dfl=dict(
                type='mmdet.DistributionFocalLoss',
                reduction='mean',
                loss_weight=1.5 / 4)),
        train_cfg=dict(
            assigner=dict(
                type='BatchTaskAlignedAssigner',
                num_classes=num_classes,
                use_ciou=True,
                topk=10,
                alpha=0.5,
                beta=6.0,
                eps=1e-9)),
        test_cfg=dict(
            multi_label=True,
            nms_pre=30000,
            score_thr=0.001,
            nms=dict(type='nms', iou_threshold=0.7),
            max_per_img=300)))

optim_wrapper = dict(clip_grad=dict(max_norm=10.0))
