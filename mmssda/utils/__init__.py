from .checkpoint import allow_mmengine_checkpoint_globals
from .pretrained import (MMYOLO_COCO_CHECKPOINTS, PretrainedWeightsError,
                         prepare_pretrained)
from .recipe_scaling import recipe_mismatches, scale_recipe
from .setup_env import register_all_modules

__all__ = [
    'allow_mmengine_checkpoint_globals', 'MMYOLO_COCO_CHECKPOINTS',
    'PretrainedWeightsError', 'prepare_pretrained', 'recipe_mismatches',
    'register_all_modules', 'scale_recipe'
]
