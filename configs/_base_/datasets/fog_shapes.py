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
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

data_root = 'data/fog_shapes/'
class_name = ('box', 'disc', 'triangle')
num_classes = len(class_name)
metainfo = dict(classes=class_name)
img_scale = (192, 192)
deepen_factor = 0.33
widen_factor = 0.25
# Trained from scratch (the demo starts the SSDA run from its own burn-in
# checkpoint); no COCO weights.
load_from = None

model = dict(
    detector=dict(
        backbone=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
        neck=dict(deepen_factor=deepen_factor, widen_factor=widen_factor),
        bbox_head=dict(head_module=dict(widen_factor=widen_factor))))

# The recipe's paired pipeline; scale_recipe (below) sets its sizes.
train_pipeline = _base_.train_pipeline

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

# Every size- and class-dependent value from img_scale and num_classes.
mmssda_utils.scale_recipe(vars())
