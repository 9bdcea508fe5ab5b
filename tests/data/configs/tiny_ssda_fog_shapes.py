# tiny_ssda_fog_shapes_eval.py without validation or test: for the
# training-only tests (resume, multi-process).
_base_ = './tiny_ssda_fog_shapes_eval.py'

train_cfg = dict(val_interval=_base_.max_iters + 1)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
