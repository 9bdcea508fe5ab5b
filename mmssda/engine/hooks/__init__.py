from .progress_bar_hook import ProgressBarHook
from .ssda_mean_teacher_hook import SSDAMeanTeacherHook
from .student_ema_hook import StudentEMAHook
from .yolov5_iter_param_scheduler_hook import YOLOv5IterParamSchedulerHook

__all__ = [
    'ProgressBarHook', 'SSDAMeanTeacherHook', 'StudentEMAHook',
    'YOLOv5IterParamSchedulerHook'
]
