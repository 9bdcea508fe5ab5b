from .base_head_adapter import (BaseHeadAdapter, build_head_adapter,
                                flatten_maps)
from .centerness_head_adapter import CenternessHeadAdapter
from .class_score_head_adapter import ClassScoreHeadAdapter
from .epoch_switch_head_adapter import EpochSwitchHeadAdapter
from .objectness_head_adapter import ObjectnessHeadAdapter
from .two_stage_head_adapter import TwoStageHeadAdapter
from .yolox_head_adapter import YOLOXHeadAdapter

__all__ = [
    'BaseHeadAdapter', 'build_head_adapter', 'flatten_maps',
    'CenternessHeadAdapter', 'ClassScoreHeadAdapter',
    'EpochSwitchHeadAdapter', 'ObjectnessHeadAdapter', 'TwoStageHeadAdapter',
    'YOLOXHeadAdapter'
]
