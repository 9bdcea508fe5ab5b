from .class_adaptive_threshold import ClassAdaptiveThreshold
from .foreach_ema import ForeachExpMomentumEMA

__all__ = ['ClassAdaptiveThreshold', 'ForeachExpMomentumEMA']
