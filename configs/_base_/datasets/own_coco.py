# Your own data with COCO json labels: a labelled source (json), a folder of
# unlabelled target images (no json needed) and a labelled target
# validation set (json) (docs/own_data.md). Layout under data_root:
#   annotations/source_train.json  file_name relative to source/train/
#   annotations/target_val.json    file_name relative to target/val/
#   source/train/**/*.jpg          labelled source
#   target/train/**/*.jpg          unlabelled target (read as a folder)
#   target/val/**/*.jpg            labelled target: validation and test
#   fakes/source/train/...         source in the target style, the same
#                                  relative paths as source/train/
#   fakes/target/train/...         target in the source style
# Write FDA fakes with tools/misc/make_fake_images.py (docs/own_data.md), or
# put CUT/CycleGAN output there; a fake may be .png, .jpg, .jpeg or .bmp.
_base_ = '../ssda_yolov5_s.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

# ==== Edit these lines: paths (relative to the working directory, or
# absolute) and the class names to train, in the order of the json's
# `categories` list (mmdet numbers the labels in that order; categories
# left out are not loaded). ====
data_root = 'data/own_coco/'
source_ann = data_root + 'annotations/source_train.json'
source_images = data_root + 'source/train/'
target_images = data_root + 'target/train/'
val_ann = data_root + 'annotations/target_val.json'
val_images = data_root + 'target/val/'
source_fakes = data_root + 'fakes/source/train/'
target_fakes = data_root + 'fakes/target/train/'
class_name = ('person', 'car')
# ==== End of the lines to edit. ====
num_classes = len(class_name)
metainfo = dict(classes=class_name)

source_train_dataset = dict(
    type='PairedDataset',
    domain='source',
    dataset=dict(
        type='YOLOv5CocoDataset',
        metainfo=metainfo,
        ann_file=source_ann,
        data_prefix=dict(img=source_images),
        # images without boxes stay (background), boxes of any size train
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=[]),
    fake_root=source_fakes,
    pipeline=_base_.train_pipeline)
# The target is a plain image folder: YOLOTxtDataset without labels.
target_train_dataset = dict(
    type='PairedDataset',
    domain='target',
    dataset=dict(
        type='YOLOTxtDataset',
        metainfo=metainfo,
        data_prefix=dict(img=target_images),
        with_label=False,
        pipeline=[]),
    fake_root=target_fakes,
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    dataset=dict(
        datasets=[source_train_dataset, target_train_dataset],
        # the COCO dataset has a default colour palette, the folder none
        ignore_keys=['palette']))

val_dataloader = dict(
    dataset=dict(
        data_root='',  # the paths above are whole (mmyolo's is data/coco/)
        metainfo=metainfo,
        ann_file=val_ann,
        data_prefix=dict(img=val_images)))
test_dataloader = val_dataloader

# COCO bbox metrics with per-class AP against the json, and VOC-style
# per-class AP50 (what DA papers report).
val_evaluator = _base_.val_evaluator
val_evaluator[0].ann_file = val_ann  # CocoMetric
test_evaluator = val_evaluator

# Head classes, loss_cls weight and the rest from num_classes/img_scale.
mmssda_utils.scale_recipe(vars())
