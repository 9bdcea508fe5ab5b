from .foreach_ema import ForeachExpMomentumEMA

__all__ = ['ForeachExpMomentumEMA']
