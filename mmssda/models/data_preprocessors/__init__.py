from .stacked_det_data_preprocessor import StackedDetDataPreprocessor

__all__ = ['StackedDetDataPreprocessor']
