from .atmospheric_fog import AtmosphericFog
from .color_stats_transfer import ColorStatsTransfer
from .fda_style_transfer import FDAStyleTransfer
from .load_paired_image_from_file import LoadPairedImageFromFile
from .pack_paired_det_inputs import PackPairedDetInputs
from .paired_mosaic import PairedMosaic
from .paired_transform import PairedTransform
from .paired_yolov5_hsv_random_aug import PairedYOLOv5HSVRandomAug
from .random_block_mask import RandomBlockMask
from .real_as_fake import RealAsFake
from .seeded_albu import SeededAlbu
from .strong_view import StrongView
from .yolov5_random_affine import YOLOv5RandomAffine

__all__ = [
    'AtmosphericFog', 'ColorStatsTransfer', 'FDAStyleTransfer',
    'LoadPairedImageFromFile', 'PackPairedDetInputs', 'PairedMosaic',
    'PairedTransform', 'PairedYOLOv5HSVRandomAug', 'RandomBlockMask',
    'RealAsFake', 'SeededAlbu', 'StrongView', 'YOLOv5RandomAffine'
]
