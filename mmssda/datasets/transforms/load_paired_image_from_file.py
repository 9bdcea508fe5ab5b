import warnings
from typing import Optional

import mmcv
from mmcv.transforms import LoadImageFromFile

from mmssda.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadPairedImageFromFile(LoadImageFromFile):
    """Load the real image of a pair into ``img`` and the fake into
    ``fake_img``.

    The real image is loaded exactly as :class:`mmcv.transforms.
    LoadImageFromFile` does; the fake is loaded with the same settings. A
    fake whose size differs from the real image is resized (bilinear) to the
    real size, with a warning the first time it happens.

    A pair without fake file (``fake_img_path`` None: a ``PairedDataset``
    with ``fake_pipeline`` instead of ``fake_root``) gets its fake made from
    the real image right after loading, by ``results['dataset'].make_fake``
    (the dataset is in the results of every sample and mosaic partner).

    Required Keys:

    - img_path
    - fake_img_path (str | None)
    - dataset (when fake_img_path is None)

    Added Keys:

    - img (np.ndarray): (H, W, 3) BGR, the real image.
    - fake_img (np.ndarray): (H, W, 3) BGR, the fake image, same shape.
    - img_shape
    - ori_shape

    Args:
        **kwargs: :class:`mmcv.transforms.LoadImageFromFile` arguments
            (``to_float32``, ``color_type``, ``imdecode_backend``,
            ``ignore_empty``, ``backend_args``).

    Example:
        >>> pre_transform = [
        ...     dict(type='LoadPairedImageFromFile'),
        ...     dict(type='LoadAnnotations', with_bbox=True)]
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._warned_resize = False

    def transform(self, results: dict) -> Optional[dict]:
        """Load both images.

        Args:
            results (dict): Data info of a :class:`PairedDataset` sample.

        Returns:
            dict | None: The results with ``img`` and ``fake_img``, or None
            if an image is empty and ``ignore_empty`` is set.
        """
        if 'fake_img_path' not in results:
            raise KeyError(
                'LoadPairedImageFromFile needs results["fake_img_path"]: '
                f'wrap the dataset of {results.get("img_path")} in '
                'PairedDataset.')
        results = super().transform(results)
        if results is None:
            return None
        if results['fake_img_path'] is None:
            return self._make_fake(results)
        fake = super().transform(dict(img_path=results['fake_img_path']))
        if fake is None:
            return None
        results['fake_img'] = self._match_size(fake['img'], results)
        return results

    @staticmethod
    def _make_fake(results: dict) -> dict:
        """Make the fake online with the dataset's ``make_fake``."""
        make_fake = getattr(results.get('dataset'), 'make_fake', None)
        if make_fake is None:
            raise KeyError(
                f'LoadPairedImageFromFile: {results.get("img_path")} has no '
                'fake image file (fake_img_path is None) and '
                'results["dataset"] cannot make one; configure the '
                'PairedDataset with `fake_root` or with `fake_pipeline`.')
        return make_fake(results)

    def _match_size(self, fake_img, results: dict):
        """Resize ``fake_img`` to the real image size (warn once)."""
        real_h, real_w = results['img'].shape[:2]
        if fake_img.shape[:2] == (real_h, real_w):
            return fake_img
        if not self._warned_resize:
            warnings.warn(
                f'LoadPairedImageFromFile: fake image '
                f'{results["fake_img_path"]} is {fake_img.shape[1]}x'
                f'{fake_img.shape[0]} but its real image '
                f'{results["img_path"]} is {real_w}x{real_h}; fakes of '
                'another size are resized to the real size (warned once).')
            self._warned_resize = True
        return mmcv.imresize(fake_img, (real_w, real_h))
