from .ssda_iter_based_train_loop import SSDAIterBasedTrainLoop
from .teacher_student_test_loop import TeacherStudentTestLoop

__all__ = ['SSDAIterBasedTrainLoop', 'TeacherStudentTestLoop']
