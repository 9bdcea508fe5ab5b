# PASCAL VOC 2007+2012 trainval -> Clipart1k (500 train / 500 test).
# Layout (VOC format):
#   data/voc2clipart/VOCdevkit/VOC{2007,2012}/...          real source
#   data/voc2clipart/VOCdevkit_cut/VOC{2007,2012}/JPEGImages fake source
#       (VOC translated to the clipart style, e.g. by CUT)
#   data/voc2clipart/clipart/{JPEGImages,Annotations,ImageSets}  real target
#   data/voc2clipart/clipart_cut/JPEGImages                fake target
_base_ = '../ssda_yolov5_s.py'

data_root = 'data/voc2clipart/'
class_name = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
              'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
              'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
              'tvmonitor')
num_classes = len(class_name)
metainfo = dict(classes=class_name)

model = dict(
    detector=dict(
        bbox_head=dict(
            head_module=dict(num_classes=num_classes),
            loss_cls=dict(loss_weight=0.5 * (num_classes / 80)))))

voc_split = dict(
    type='mmdet.VOCDataset',
    data_root=data_root + 'VOCdevkit/',
    metainfo=metainfo,
    ann_file='VOC2007/ImageSets/Main/trainval.txt',
    data_prefix=dict(sub_data_root='VOC2007/'),
    # every box trains, as in SSDA-YOLO's YOLO labels (mmdet's VOC configs
    # ignore boxes under 32 px with bbox_min_size=32); difficult ones are
    # ignored, as the original's VOC -> YOLO conversion drops them
    filter_cfg=dict(filter_empty_gt=False),
    pipeline=[])
clipart_split = dict(
    voc_split,
    data_root=data_root,
    ann_file='clipart/ImageSets/Main/train.txt',
    data_prefix=dict(sub_data_root='clipart/'))

source_train_dataset = dict(
    type='PairedDataset',
    domain='source',
    dataset=dict(
        type='ConcatDataset',
        datasets=[
            voc_split,
            dict(
                voc_split,
                ann_file='VOC2012/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2012/'))
        ]),
    # VOC 2007 + 2012; PairedDataset gives both its empty inner pipeline and
    # drops VOCDataset's metainfo['dataset_type'] (the VOC year), so the
    # years and the Clipart target have the same metainfo.
    # Two inner sets: pair paths relative to VOCdevkit/ (VOC2007/..., ...)
    real_root=data_root + 'VOCdevkit/',
    fake_root=data_root + 'VOCdevkit_cut/',
    pipeline=_base_.train_pipeline)
target_train_dataset = dict(
    type='PairedDataset',
    domain='target',
    dataset=clipart_split,
    fake_root=data_root + 'clipart_cut/',
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
        type='mmdet.VOCDataset',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='clipart/ImageSets/Main/test.txt',
        data_prefix=dict(sub_data_root='clipart/'),
        test_mode=True,
        pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
