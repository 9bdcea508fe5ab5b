# Upper bound: YOLOv5-s trained on labelled Foggy Cityscapes train images
# (both halves of every batch), evaluated on Foggy Cityscapes val. Needs the
# foggy train boxes: run cityscapes_to_coco.py with --target-labels.
_base_ = './ssda_yolov5s_city2foggy.py'

model = dict(
    distill_loss=None,
    consistency_loss=None,
    semi_train_cfg=dict(supervised_streams=['source_real', 'target_real']))

# The "source" slot holds labelled target images too; no fakes are used, so
# the fake root is the real one.
oracle_train_dataset = dict(
    _base_.target_train_dataset,
    domain='source',
    fake_root=_base_.data_root + 'cityscapes/leftImg8bit_foggy/train/')
train_dataloader = dict(
    dataset=dict(
        datasets=[oracle_train_dataset, _base_.target_train_dataset]))
