# The built-in clear -> fog benchmark (mmssda.datasets.generate_fog_shapes,
# written by `python tools/misc/generate_fog_shapes.py data/fog_shapes`):
#   source/{images,labels}      clear scenes, labelled (YOLO txt)
#   source_fake/images          source in the fog style (FDA)
#   target/{images,labels}      foggy scenes; labels only for the oracle and
#                               the logged pseudo-label precision/recall
#   target_fake/images          target in the clear style (FDA)
#   target_val/{images,labels}  foggy, held out: what every run is scored on
#   annotations/*.json          COCO copies of the labels
# A YOLOv5 sized for CPUs (deepen 0.33, widen 0.25) at 192 px.
_base_ = '../ssda_yolov5_s.py'

data_root = 'data/fog_shapes/'
class_name = ('box', 'disc', 'triangle')
num_classes = len(class_name)
metainfo = dict(classes=class_name)
img_scale = (192, 192)
deepen_factor = 0.33
widen_factor = 0.25

model = dict(
    detector=dict(
        backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
        neck=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
        bbox_head=dict(
            head_module=dict(
                num_classes=num_classes, widen_factor=widen_factor),
            loss_cls=dict(loss_weight=0.5 * (num_classes / 80)),
            loss_obj=dict(loss_weight=(img_scale[0] / 640)**2))))

# The recipe's paired pipeline, at this data set's scale.
train_pipeline = _base_.train_pipeline
train_pipeline[2].img_scale = img_scale  # PairedMosaic
train_pipeline[3].transforms[0].border = (  # YOLOv5RandomAffine
    -img_scale[0] // 2, -img_scale[1] // 2)

split = dict(
    type='YOLOTxtDataset',
    data_root=data_root,
    metainfo=metainfo,
    data_prefix=dict(img='source/images/'),
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=[])
source_train_dataset = dict(
    type='PairedDataset',
    domain='source',
    dataset=split,
    fake_root=data_root + 'source_fake/images/',
    pipeline=train_pipeline)
# Labels are never trained on here (SSDA uses pseudo-labels); they feed the
# logged pseudo-label precision/recall.
target_train_dataset = dict(
    source_train_dataset,
    domain='target',
    dataset=dict(split, data_prefix=dict(img='target/images/')),
    fake_root=data_root + 'target_fake/images/')
train_num_workers = 2
train_dataloader = dict(
    num_workers=train_num_workers,
    persistent_workers=True,
    dataset=dict(datasets=[source_train_dataset, target_train_dataset]))

test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = img_scale  # YOLOv5KeepRatioResize
test_pipeline[2].scale = img_scale  # LetterResize
target_val_ann = 'annotations/target_val.json'
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=target_val_ann,
        data_prefix=dict(img='target_val/images/'),
        batch_shapes_cfg=None,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = _base_.val_evaluator
val_evaluator[0].ann_file = data_root + target_val_ann  # CocoMetric
test_evaluator = val_evaluator
