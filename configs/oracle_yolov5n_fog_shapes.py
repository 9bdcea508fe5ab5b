# Upper bound: the same YOLOv5 trained on labelled foggy target images with
# the source-only recipe (same images per iteration), scored on fog.
_base_ = './source_only_yolov5n_fog_shapes.py'

# The "source" slot holds the labelled target split; its fake is itself.
oracle_train_dataset = dict(
    _base_.target_train_dataset,
    domain='source',
    fake_root=_base_.data_root + 'target/images/')
train_dataloader = dict(
    dataset=dict(
        datasets=[oracle_train_dataset, _base_.target_train_dataset]))
