from .ssda_detector import SSDADetector

__all__ = ['SSDADetector']
