from .detectors import *  # noqa: F401,F403
from .head_adapters import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403

__all__ = []
