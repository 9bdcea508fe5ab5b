from .paired_dataset import PairedDataset
from .samplers import MultiDomainSampler
from .synthetic import generate_fog_shapes
from .transforms import (AtmosphericFog, FDAStyleTransfer,
                         LoadPairedImageFromFile, PackPairedDetInputs,
                         PairedMosaic, PairedTransform,
                         PairedYOLOv5HSVRandomAug, RandomBlockMask, SeededAlbu,
                         StrongView)
from .yolo_txt_dataset import YOLOTxtDataset

__all__ = [
    'PairedDataset', 'YOLOTxtDataset', 'MultiDomainSampler',
    'generate_fog_shapes', 'AtmosphericFog', 'FDAStyleTransfer',
    'LoadPairedImageFromFile', 'PackPairedDetInputs', 'PairedMosaic',
    'PairedTransform', 'PairedYOLOv5HSVRandomAug', 'RandomBlockMask',
    'SeededAlbu', 'StrongView'
]
