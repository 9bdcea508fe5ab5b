from .checkpoint import allow_mmengine_checkpoint_globals
from .setup_env import register_all_modules

__all__ = ['allow_mmengine_checkpoint_globals', 'register_all_modules']
