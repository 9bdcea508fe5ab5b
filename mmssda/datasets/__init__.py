from .paired_dataset import PairedDataset
from .samplers import MultiDomainSampler
from .transforms import (LoadPairedImageFromFile, PackPairedDetInputs,
                         PairedMosaic, PairedTransform,
                         PairedYOLOv5HSVRandomAug)
from .yolo_txt_dataset import YOLOTxtDataset

__all__ = [
    'PairedDataset', 'YOLOTxtDataset', 'MultiDomainSampler',
    'LoadPairedImageFromFile', 'PackPairedDetInputs', 'PairedMosaic',
    'PairedTransform', 'PairedYOLOv5HSVRandomAug'
]
