# Mean-teacher domain adaptation on the built-in clear -> fog benchmark,
# without any translated image: the fake of every pair is a copy of its
# real image (RealAsFake), the setting of Adaptive Teacher and ALDI. The
# student learns from the source labels (source-real only: a source-fake
# stream would repeat it) and from the teacher's pseudo-labels on
# target-real; there is no consistency term (it would be zero by
# construction). Everything else is configs/ssda_yolov5n_fog_shapes.py.
_base_ = './ssda_yolov5n_fog_shapes.py'

model = dict(
    consistency_loss=None,
    semi_train_cfg=dict(supervised_streams=['source_real']))

source_train_dataset = dict(
    _base_.source_train_dataset,
    fake_root=None,
    fake_pipeline=[dict(type='RealAsFake')])
target_train_dataset = dict(
    _base_.target_train_dataset,
    fake_root=None,
    fake_pipeline=[dict(type='RealAsFake')])
train_dataloader = dict(
    dataset=dict(datasets=[source_train_dataset, target_train_dataset]))
