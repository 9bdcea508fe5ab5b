# Baseline: YOLOv5-s trained on Cityscapes only, evaluated on Foggy
# Cityscapes. Same data stream, schedule and evaluation as
# ssda_yolov5s_city2foggy.py; the fake and target streams are not trained
# on and the teacher never runs (it is still the EMA of the student).
_base_ = './ssda_yolov5s_city2foggy.py'

model = dict(
    distill_loss=None,
    consistency_loss=None,
    semi_train_cfg=dict(supervised_streams=['source_real']))
