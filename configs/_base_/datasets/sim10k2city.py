# Sim10k -> Cityscapes, car only (the synthetic-to-real DA benchmark): the
# 10000 Sim10k images (VOC xml; their person and motorbike boxes are not
# loaded) as the labelled source, the 2975 Cityscapes train images as the
# unlabelled target, car AP50 on the 500 Cityscapes val images
# (docs/own_data.md). Layout under data_root:
#   sim10k/VOC2012/JPEGImages/*.jpg                  real source
#   sim10k/VOC2012/Annotations/*.xml
#   sim10k/VOC2012/ImageSets/Main/trainval10k.txt    the image ids, e.g.
#       ls sim10k/VOC2012/Annotations | sed 's/\.xml$//' > <that file>
#   cityscapes/{gtFine,leftImg8bit}/{train,val}/<city>/...   real target
#   annotations/cityscapes_{train,val}.json, car boxes, written by
#     python tools/dataset_converters/cityscapes_to_coco.py \
#       --cityscapes-root data/sim10k2city/cityscapes \
#       --out-dir data/sim10k2city/annotations --no-foggy --classes car
#   sim10k_fake/JPEGImages/*.{png,jpg}               Sim10k in the
#       Cityscapes style (CUT, or tools/misc/make_fake_images.py)
#   cityscapes_fake/leftImg8bit/train/<city>/*       Cityscapes in the
#       Sim10k style, the same relative paths
_base_ = '../ssda_yolov5_s.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

# ==== Edit these lines: paths (relative to the working directory, or
# absolute). ====
data_root = 'data/sim10k2city/'
sim10k_root = data_root + 'sim10k/VOC2012/'
sim10k_ids = sim10k_root + 'ImageSets/Main/trainval10k.txt'
cityscapes_images = data_root + 'cityscapes/leftImg8bit/'
cityscapes_train_ann = data_root + 'annotations/cityscapes_train.json'
cityscapes_val_ann = data_root + 'annotations/cityscapes_val.json'
sim10k_fakes = data_root + 'sim10k_fake/'
cityscapes_fakes = data_root + 'cityscapes_fake/leftImg8bit/train/'
# ==== End of the lines to edit. ====
class_name = ('car', )  # the benchmark's one class
num_classes = len(class_name)
metainfo = dict(classes=class_name)

source_train_dataset = dict(
    type='PairedDataset',
    domain='source',
    dataset=dict(
        type='mmdet.VOCDataset',
        metainfo=metainfo,
        ann_file=sim10k_ids,
        data_prefix=dict(sub_data_root=sim10k_root),
        # every car box trains; images without cars stay (background)
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=[]),
    # Sim10k's JPEGImages/<id>.jpg -> sim10k_fakes + JPEGImages/<id>.png
    real_root=sim10k_root,
    fake_root=sim10k_fakes,
    pipeline=_base_.train_pipeline)
# Target labels are never trained on; they give the logged pseudo-label
# precision/recall.
target_train_dataset = dict(
    type='PairedDataset',
    domain='target',
    dataset=dict(
        type='YOLOv5CocoDataset',
        metainfo=metainfo,
        ann_file=cityscapes_train_ann,
        data_prefix=dict(img=cityscapes_images + 'train/'),
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=[]),
    fake_root=cityscapes_fakes,
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    dataset=dict(
        datasets=[source_train_dataset, target_train_dataset],
        # VOC and COCO data sets have different default colour palettes
        ignore_keys=['palette']))

val_dataloader = dict(
    dataset=dict(
        data_root='',  # the paths above are whole (mmyolo's is data/coco/)
        metainfo=metainfo,
        ann_file=cityscapes_val_ann,
        data_prefix=dict(img=cityscapes_images + 'val/')))
test_dataloader = val_dataloader

# Car AP50 (VOC style, what the benchmark reports) and COCO bbox metrics.
val_evaluator = _base_.val_evaluator
val_evaluator[0].ann_file = cityscapes_val_ann  # CocoMetric
test_evaluator = val_evaluator

# Head classes, loss_cls weight and the rest from num_classes/img_scale.
mmssda_utils.scale_recipe(vars())
