# SSDA-YOLO on the built-in clear -> fog benchmark (the demo's main run).
# The demo (tools/demo.py) resumes a source-only burn-in run with this recipe
# (one learning-rate schedule across both), the protocol Adaptive Teacher
# uses, so that a CPU-sized run has a teacher worth distilling from.
_base_ = './_base_/datasets/fog_shapes.py'

source_per_batch = 8
target_per_batch = 8
max_iters = 300
val_interval = 100
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(
    param_scheduler=dict(warmup_iters=0),
    checkpoint=dict(interval=val_interval),
    logger=dict(interval=20))

# The paper's recipe with a lower pseudo-label score threshold: after the
# demo's 600-iteration burn-in the teacher is a weak, under-confident
# detector (target mAP@0.5 about 0.13) whose scores rarely reach the paper's
# 0.5. Its pseudo-labels by score threshold
# (mmssda.apis.pseudo_label_sweep on the first 200 target-fake images;
# boxes per image, precision, recall):
#   0.5: 0.005, -, 0.00    0.3: 0.42, 0.34, 0.04    0.25: 0.93, 0.32, 0.08
#   0.2: 1.56, 0.33, 0.14  0.1: 3.47, 0.30, 0.29
# Precision barely depends on the threshold, so 0.2 gives the student
# pseudo-labels without making them worse. A longer burn-in does not help:
# after 400 iterations 0.15 boxes per image passed 0.5, after 600 0.005.
pseudo_score_thr = 0.2
model = dict(
    semi_train_cfg=dict(pseudo_label_cfg=dict(score_thr=pseudo_score_thr)))
