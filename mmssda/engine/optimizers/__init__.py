from .student_optim_constructor import StudentOptimizerConstructor

__all__ = ['StudentOptimizerConstructor']
