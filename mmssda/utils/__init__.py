from .atomic_local_backend import AtomicLocalBackend
from .checkpoint import (CheckpointHashError, UnsafeCheckpointError,
                         allow_mmengine_checkpoint_globals,
                         install_safe_checkpoint_loaders, safe_load)
from .config_checks import UnknownOptionError, check_option_keys
from .config_overrides import CfgOptionsError, merge_cfg_options
from .detector_configs import zoo_detector
from .file_mapping import map_file_array, max_map_count
from .malloc import keep_large_buffers
from .pretrained import (MMYOLO_COCO_CHECKPOINTS, PretrainedWeightsError,
                         prepare_pretrained)
from .recipe_scaling import recipe_mismatches, scale_recipe
from .setup_env import register_all_modules

__all__ = [
    'AtomicLocalBackend', 'allow_mmengine_checkpoint_globals',
    'CheckpointHashError', 'UnsafeCheckpointError',
    'install_safe_checkpoint_loaders', 'safe_load',
    'CfgOptionsError', 'check_option_keys', 'merge_cfg_options',
    'UnknownOptionError',
    'keep_large_buffers', 'map_file_array', 'max_map_count',
    'MMYOLO_COCO_CHECKPOINTS',
    'PretrainedWeightsError', 'prepare_pretrained', 'recipe_mismatches',
    'register_all_modules', 'scale_recipe', 'zoo_detector'
]
