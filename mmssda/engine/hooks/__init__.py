from .atomic_checkpoint_hook import AtomicCheckpointHook
from .non_finite_loss_hook import NonFiniteLossHook
from .progress_bar_hook import ProgressBarHook
from .pseudo_label_health_hook import PseudoLabelHealthHook
from .random_state_hook import RandomStateHook
from .ssda_mean_teacher_hook import SSDAMeanTeacherHook
from .student_ema_hook import StudentEMAHook
from .yolov5_iter_param_scheduler_hook import YOLOv5IterParamSchedulerHook

__all__ = [
    'AtomicCheckpointHook', 'NonFiniteLossHook', 'ProgressBarHook',
    'PseudoLabelHealthHook',
    'RandomStateHook', 'SSDAMeanTeacherHook', 'StudentEMAHook',
    'YOLOv5IterParamSchedulerHook'
]
