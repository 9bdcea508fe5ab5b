from .teacher_student_test_loop import TeacherStudentTestLoop

__all__ = ['TeacherStudentTestLoop']
