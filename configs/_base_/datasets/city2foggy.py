# Cityscapes -> Foggy Cityscapes (beta 0.02, 2975 train / 500 val).
# Layout (the official archives unpacked into data/city2foggy/cityscapes):
#   cityscapes/{gtFine,leftImg8bit}/{train,val}/<city>/...     real source
#   cityscapes/leftImg8bit_foggy/{train,val}/<city>/...        real target
#   cityscapes_cut/leftImg8bit/train/<city>/*.png              fake source
#       (Cityscapes in the foggy style, e.g. CUT; same relative paths)
#   cityscapes_cut/leftImg8bit_foggy/train/<city>/*.png        fake target
#       (Foggy Cityscapes in the clear style)
#   annotations/*.json, written by
#     python tools/dataset_converters/cityscapes_to_coco.py \
#       --cityscapes-root data/city2foggy/cityscapes \
#       --out-dir data/city2foggy/annotations
# No fakes yet? tools/misc/make_fake_images.py writes FDA ones.
_base_ = '../ssda_yolov5_s.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.datasets.coco_conversion as coco_conversion  # noqa: E402
import mmssda.utils as mmssda_utils  # noqa: E402

data_root = 'data/city2foggy/'
# SSDA-YOLO's order; the converter writes the json categories in this order
# (mmdet numbers the labels in the json's category order).
class_name = coco_conversion.CITYSCAPES_DA_CLASSES
num_classes = len(class_name)
metainfo = dict(classes=class_name)
dataset_type = 'YOLOv5CocoDataset'

source_train_split = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    ann_file='annotations/cityscapes_train.json',
    data_prefix=dict(img='cityscapes/leftImg8bit/train/'),
    filter_cfg=dict(filter_empty_gt=False, min_size=32),
    pipeline=[])
target_train_split = dict(
    source_train_split,
    ann_file='annotations/foggy_cityscapes_train.json',
    data_prefix=dict(img='cityscapes/leftImg8bit_foggy/train/'))

source_train_dataset = dict(
    type='PairedDataset',
    domain='source',
    dataset=source_train_split,
    fake_root=data_root + 'cityscapes_cut/leftImg8bit/train/',
    pipeline=_base_.train_pipeline)
# Target labels are never trained on; if present they give the logged
# pseudo-label precision/recall.
target_train_dataset = dict(
    type='PairedDataset',
    domain='target',
    dataset=target_train_split,
    fake_root=data_root + 'cityscapes_cut/leftImg8bit_foggy/train/',
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    dataset=dict(datasets=[source_train_dataset, target_train_dataset]))

target_val_ann = 'annotations/foggy_cityscapes_val.json'
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=target_val_ann,
        data_prefix=dict(img='cityscapes/leftImg8bit_foggy/val/')))
test_dataloader = val_dataloader

# COCO bbox metrics and VOC-style per-class AP50 (what DA papers report).
val_evaluator = _base_.val_evaluator
val_evaluator[0].ann_file = data_root + target_val_ann  # CocoMetric
test_evaluator = val_evaluator

# Head classes, loss_cls weight and the rest from num_classes/img_scale.
mmssda_utils.scale_recipe(vars())
