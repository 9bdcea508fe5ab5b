from .non_finite_skip_optim_wrapper import (NonFiniteSkipOptimWrapper,
                                            optimizer_stepped)
from .student_optim_constructor import StudentOptimizerConstructor

__all__ = [
    'NonFiniteSkipOptimWrapper', 'StudentOptimizerConstructor',
    'optimizer_stepped'
]
