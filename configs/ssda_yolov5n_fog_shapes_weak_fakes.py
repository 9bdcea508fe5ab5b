# SSDA-YOLO on the built-in clear -> fog benchmark with weak fakes: each
# fake is made from its real image when it is loaded by a global colour and
# contrast transfer (ColorStatsTransfer: every channel gets the mean and
# standard deviation of a random image of the other domain). It cannot draw
# fog that thickens with depth, so the source-fake looks only roughly like
# the target: the fake a user has who can match colours but has no CUT,
# CycleGAN or fog model. Everything else is configs/ssda_yolov5n_fog_shapes.py.
_base_ = './ssda_yolov5n_fog_shapes.py'

source_train_dataset = dict(
    _base_.source_train_dataset,
    fake_root=None,
    fake_pipeline=[
        dict(
            type='ColorStatsTransfer',
            ref_path=_base_.data_root + 'target/images/')
    ])
target_train_dataset = dict(
    _base_.target_train_dataset,
    fake_root=None,
    fake_pipeline=[
        dict(
            type='ColorStatsTransfer',
            ref_path=_base_.data_root + 'source/images/')
    ])
train_dataloader = dict(
    dataset=dict(datasets=[source_train_dataset, target_train_dataset]))
