# Baseline: the same YOLOv5 trained on the clear source only, scored on fog.
# Same sampler, schedule and evaluation as ssda_yolov5n_fog_shapes.py; the
# fake and target streams are not trained on and the teacher never runs.
_base_ = './ssda_yolov5n_fog_shapes.py'

model = dict(
    distill_loss=None,
    consistency_loss=None,
    semi_train_cfg=dict(supervised_streams=['source_real']))
