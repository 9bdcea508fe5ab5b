from .shared_batch_teacher_student_val_loop import \
    SharedBatchTeacherStudentValLoop
from .ssda_iter_based_train_loop import SSDAIterBasedTrainLoop
from .teacher_student_test_loop import TeacherStudentTestLoop

__all__ = [
    'SharedBatchTeacherStudentValLoop', 'SSDAIterBasedTrainLoop',
    'TeacherStudentTestLoop'
]
