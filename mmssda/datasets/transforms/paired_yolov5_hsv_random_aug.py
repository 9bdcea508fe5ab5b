import cv2
import numpy as np
from mmyolo.datasets.transforms import YOLOv5HSVRandomAug
from numpy import random

from mmssda.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PairedYOLOv5HSVRandomAug(YOLOv5HSVRandomAug):
    """YOLOv5 HSV augmentation with the same gains for both images of a pair.

    The gains are drawn once per sample (the same single
    ``numpy.random.uniform(-1, 1, 3)`` draw as :class:`mmyolo.datasets.
    transforms.YOLOv5HSVRandomAug`, so the real image comes out exactly as
    with the unpaired transform) and applied to ``img`` and ``fake_img``.

    Required Keys:

    - img
    - fake_img

    Modified Keys:

    - img
    - fake_img

    Args:
        hue_delta (int | float): Delta of hue. Defaults to 0.015.
        saturation_delta (int | float): Delta of saturation. Defaults to 0.7.
        value_delta (int | float): Delta of value. Defaults to 0.4.

    Example:
        >>> dict(type='PairedYOLOv5HSVRandomAug', hue_delta=0.015,
        ...      saturation_delta=0.7, value_delta=0.4)
    """

    def transform(self, results: dict) -> dict:
        """Apply one draw of HSV gains to both images.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        if 'fake_img' not in results:
            raise KeyError(
                'PairedYOLOv5HSVRandomAug needs results["fake_img"] '
                '(load with LoadPairedImageFromFile); use '
                'YOLOv5HSVRandomAug for the real image only.')
        gains = self._random_gains()
        results['img'] = self._apply_gains(results['img'], gains)
        results['fake_img'] = self._apply_gains(results['fake_img'], gains)
        return results

    def _random_gains(self) -> np.ndarray:
        """Draw the (hue, saturation, value) gains, shape (3, )."""
        return random.uniform(-1, 1, 3) * \
            [self.hue_delta, self.saturation_delta, self.value_delta] + 1

    @staticmethod
    def _apply_gains(img: np.ndarray, gains: np.ndarray) -> np.ndarray:
        """Scale H, S, V of a BGR uint8 image by ``gains`` through LUTs.

        The parent's tables, applied as one 3-channel LUT (one call per
        channel plus ``split`` and ``merge`` give the same pixels).
        """
        table = np.arange(0, 256, dtype=gains.dtype)
        lut = np.stack([
            (table * gains[0]) % 180,
            np.clip(table * gains[1], 0, 255),
            np.clip(table * gains[2], 0, 255)
        ], -1).astype(np.uint8).reshape(1, 256, 3)
        im_hsv = cv2.LUT(cv2.cvtColor(img, cv2.COLOR_BGR2HSV), lut)
        return cv2.cvtColor(im_hsv, cv2.COLOR_HSV2BGR)
