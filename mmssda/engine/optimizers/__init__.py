from .non_finite_skip_amp_optim_wrapper import NonFiniteSkipAmpOptimWrapper
from .non_finite_skip_optim_wrapper import (NonFiniteSkipOptimWrapper,
                                            optimizer_stepped)
from .student_optim_constructor import StudentOptimizerConstructor

__all__ = [
    'NonFiniteSkipAmpOptimWrapper', 'NonFiniteSkipOptimWrapper',
    'StudentOptimizerConstructor', 'optimizer_stepped'
]
