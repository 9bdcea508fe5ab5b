from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403

__all__ = []
