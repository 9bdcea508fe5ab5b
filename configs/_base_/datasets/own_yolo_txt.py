# Your own data in YOLO txt format: labelled source images, unlabelled
# target images (docs/own_data.md). Layout under data_root:
#   source/images/train/**/*.jpg   labelled source (any sub-folders)
#   source/labels/train/**/*.txt   one `class cx cy w h` line per box
#                                  (normalised to [0, 1]; images -> labels)
#   target/images/train/**/*.jpg   unlabelled target (no labels read)
#   target/images/val/**/*.jpg     labelled target: validation and test
#   target/labels/val/**/*.txt
#   fakes/source/train/...         source in the target style, the same
#                                  relative paths as source/images/train/
#   fakes/target/train/...         target in the source style
# Write FDA fakes with tools/misc/make_fake_images.py (docs/own_data.md), or
# put CUT/CycleGAN output there; a fake may be .png, .jpg, .jpeg or .bmp.
_base_ = '../ssda_yolov5_s.py'
# Modules are not config keys (MMEngine drops them).
import mmssda.utils as mmssda_utils  # noqa: E402

# ==== Edit these lines: paths (relative to the working directory, or
# absolute) and your class names in label id order (id 0 first). ====
data_root = 'data/own_yolo_txt/'
source_images = data_root + 'source/images/train/'
target_images = data_root + 'target/images/train/'
val_images = data_root + 'target/images/val/'
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
        type='YOLOTxtDataset',
        metainfo=metainfo,
        data_prefix=dict(img=source_images),
        # images without boxes stay (background), boxes of any size train
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=[]),
    fake_root=source_fakes,
    pipeline=_base_.train_pipeline)
target_train_dataset = dict(
    type='PairedDataset',
    domain='target',
    dataset=dict(
        type='YOLOTxtDataset',
        metainfo=metainfo,
        data_prefix=dict(img=target_images),
        with_label=False,
        filter_cfg=dict(filter_empty_gt=False),
        pipeline=[]),
    fake_root=target_fakes,
    pipeline=_base_.train_pipeline)
train_dataloader = dict(
    dataset=dict(datasets=[source_train_dataset, target_train_dataset]))

# The recipe's evaluators: VOC-style AP50 (per class in the log) and COCO
# bbox metrics with per-class AP, their ground truth built from the label
# files (`instances`, packed by the recipe's test pipeline).
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='YOLOTxtDataset',
        metainfo=metainfo,
        data_prefix=dict(img=val_images),
        test_mode=True,
        batch_shapes_cfg=_base_.val_dataloader.dataset.batch_shapes_cfg,
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader

# Head classes, loss_cls weight and the rest from num_classes/img_scale.
mmssda_utils.scale_recipe(vars())
