# Cityscapes -> Foggy Cityscapes (beta 0.02, 2975 train / 500 val) in the
# original SSDA-YOLO's YOLO txt layout (its data/yamls_sda/
# cityscapes_csfoggy_VOC.yaml), with `path:` = data/city2foggy_yolo:
#   CityScapes/yolov5_format/images/{train,val}/*.jpg        real source
#   CityScapes/yolov5_format/labels/{train,val}/*.txt        cls cx cy w h
#   CityScapesFoggy/yolov5_format/images/{train,val}/*.jpg   real target
#   CityScapesFoggy/yolov5_format/labels/val/*.txt           for evaluation
# Label ids follow that yaml's `names` (SSDA-YOLO's class order, below).
# As in that yaml, the fake of a Cityscapes image is its foggy twin and the
# fake of a foggy image its clear original (same file names in both sets);
# point `fake_root` at other fakes (e.g. CUT output) to use those.
# Target train labels are optional: never trained on; if present they give
# the logged pseudo-label precision/recall.
_base_ = '../ssda_yolov5_s.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.datasets.coco_conversion as coco_conversion  # noqa: E402
import mmssda.utils as mmssda_utils  # noqa: E402

data_root = 'data/city2foggy_yolo/'
source_images = 'CityScapes/yolov5_format/images/'
target_images = 'CityScapesFoggy/yolov5_format/images/'
# SSDA-YOLO's class order: its label ids (the json converter writes it too)
class_name = coco_conversion.CITYSCAPES_DA_CLASSES
num_classes = len(class_name)
metainfo = dict(classes=class_name)

source_train_split = dict(
    type='YOLOTxtDataset',
    data_root=data_root,
    metainfo=metainfo,
    data_prefix=dict(img=source_images + 'train/'),
    filter_cfg=dict(filter_empty_gt=False, min_size=32),
    pipeline=[])
target_train_split = dict(
    source_train_split,
    data_prefix=dict(img=target_images + 'train/'),
    allow_missing_label=True)

source_train_dataset = dict(
    type='PairedDataset',
    domain='source',
    dataset=source_train_split,
    fake_root=data_root + target_images + 'train/',
    pipeline=_base_.train_pipeline)
target_train_dataset = dict(
    type='PairedDataset',
    domain='target',
    dataset=target_train_split,
    fake_root=data_root + source_images + 'train/',
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    dataset=dict(datasets=[source_train_dataset, target_train_dataset]))

# The recipe's evaluators: VOC-style AP50 (per class in the log) and COCO
# bbox metrics with per-class AP. CocoMetric has no json here: it builds its
# ground truth from the raw annotations (`instances`, in original image
# coordinates), which the recipe's test pipeline packs.
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='YOLOTxtDataset',
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(img=target_images + 'val/'),
        test_mode=True,
        batch_shapes_cfg=_base_.val_dataloader.dataset.batch_shapes_cfg,
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader

# Head classes, loss_cls weight and the rest from num_classes/img_scale.
mmssda_utils.scale_recipe(vars())
