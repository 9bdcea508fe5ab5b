from typing import Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmssda.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomBlockMask(BaseTransform):
    """MIC-style masking: blank out random square blocks of the image.

    Masked Image Consistency (MIC, Hoyer et al., CVPR 2023) trains the
    student on a target image whose patches are masked out, so that it has
    to use the context around them, against the teacher's pseudo-labels on
    the unmasked image. Here the image is cut into a grid of
    ``block_size`` x ``block_size`` blocks (the last row/column may be
    smaller) and each block is filled with ``fill`` with probability
    ``mask_ratio``. Pixels are only overwritten, never moved: boxes and
    image shape stay as they are (use it inside :class:`StrongView`).

    Required Keys:

    - img

    Modified Keys:

    - img

    Args:
        block_size (int): Side of a block in pixels. Defaults to 32 (MIC's
            detection setting at its image size; scale it with yours).
        mask_ratio (float): Probability that a block is masked, in [0, 1].
            Defaults to 0.5.
        fill (int | float | Sequence): Value of masked pixels, one value or
            one per channel. Defaults to 0 (MIC zeroes masked inputs).
        prob (float): Probability that an image is masked at all, in
            [0, 1]. Defaults to 1.0.

    Example:
        >>> dict(type='RandomBlockMask', block_size=32, mask_ratio=0.5,
        ...      fill=0, prob=0.5)
    """

    def __init__(self,
                 block_size: int = 32,
                 mask_ratio: float = 0.5,
                 fill: Union[int, float, Sequence[float]] = 0,
                 prob: float = 1.0) -> None:
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(
                f'RandomBlockMask: block_size must be an int >= 1, got '
                f'{block_size!r}')
        for name, value in (('mask_ratio', mask_ratio), ('prob', prob)):
            if not 0 <= value <= 1:
                raise ValueError(
                    f'RandomBlockMask: {name} must be in [0, 1], got {value}')
        self.block_size = block_size
        self.mask_ratio = mask_ratio
        self.fill = fill
        self.prob = prob

    @cache_randomness
    def _random_block_mask(self, grid_shape: Tuple[int, int]) -> np.ndarray:
        """Which blocks to mask (bool, ``grid_shape``); all False when the
        image is left as it is."""
        if np.random.rand() >= self.prob:
            return np.zeros(grid_shape, dtype=bool)
        return np.random.rand(*grid_shape) < self.mask_ratio

    def transform(self, results: dict) -> dict:
        """Fill the drawn blocks of ``img`` with ``fill``.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict with the masked image.
        """
        img = results['img']
        height, width = img.shape[:2]
        grid = (-(-height // self.block_size), -(-width // self.block_size))
        blocks = self._random_block_mask(grid)
        if not blocks.any():
            return results
        pixels = np.kron(blocks, np.ones((self.block_size, self.block_size),
                                         dtype=bool))[:height, :width]
        img = img.copy()
        img[pixels] = self.fill
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(block_size={self.block_size}, '
                f'mask_ratio={self.mask_ratio}, fill={self.fill}, '
                f'prob={self.prob})')
