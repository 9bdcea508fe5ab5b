import warnings
from typing import Optional, Tuple

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile

from mmssda.registry import TRANSFORMS
from ..image_cache import ImageCache
from ..yolo_txt_dataset import check_image_file


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

    **Image cache** (``cache='ram'`` or ``'disk'``, for training pipelines):
    every real and fake image is decoded once and kept at training scale by
    an :class:`~mmssda.datasets.ImageCache` shared by the dataloader workers
    (YOLOv5's ``--cache``). ``img`` is then the real image resized to fit
    ``cache_scale`` (the mosaic cell, ``img_scale``) and ``fake_img`` the
    fake at the same shape; ``ori_shape`` stays the decoded size, and the
    boxes (``instances[*].bbox``, or ``gt_bboxes`` if already loaded) are
    scaled by the same ratio, in float32 as ``Mosaic`` scales them. With
    the default bilinear interpolation, a ``PairedMosaic`` of cached images
    is identical to the uncached one (pixels and boxes), because the mosaic
    applies exactly this resize to full-size images. The first time the
    transform sees a data set (``results['dataset']``, set by
    :class:`PairedDataset`), it estimates the memory all its real and fake
    images need and raises ``MemoryError`` naming ``cache`` when they would
    not fit. Instance masks are not rescaled. A fake made online (no fake
    file) is made from the cached real image, i.e. at training scale.
    Cached ``img`` and ``fake_img`` are read-only views of the shared cache
    (no copy per load; ``to_float32`` gives writeable copies): transforms
    after this one must not modify them in place (numpy raises
    ``assignment destination is read-only``; none of mmssda's transforms
    and none of the recipe's mmyolo/mmdet ones does).

    Required Keys:

    - img_path
    - fake_img_path (str | None)
    - dataset (when fake_img_path is None)

    Added Keys:

    - img (np.ndarray): (H, W, 3) BGR, the real image.
    - fake_img (np.ndarray): (H, W, 3) BGR, the fake image, same shape.
    - img_shape
    - ori_shape

    Modified Keys (with a cache, when it downscales):

    - instances (``bbox``), gt_bboxes

    Args:
        cache (str, optional): None (default: decode every time), ``'ram'``
            (a per-run folder on ``/dev/shm``, shared memory) or ``'disk'``
            (``cache_dir``, kept across runs).
        cache_scale (tuple[int, int]): ``(width, height)`` the cached images
            fit, the training ``img_scale``. Defaults to (640, 640).
        cache_dir (str, optional): Folder of the cache: a tmpfs for
            ``'ram'`` (default ``/dev/shm``), any folder for ``'disk'``
            (default ``~/.cache/mmssda/image_cache``).
        cache_interpolation (str): Interpolation of the downscale, see
            :class:`~mmssda.datasets.ImageCache`. Defaults to
            ``'bilinear'`` (the mosaic's own).
        **kwargs: :class:`mmcv.transforms.LoadImageFromFile` arguments
            (``to_float32``, ``color_type``, ``imdecode_backend``,
            ``ignore_empty``, ``backend_args``).

    Example:
        >>> pre_transform = [
        ...     dict(type='LoadPairedImageFromFile', cache='ram',
        ...          cache_scale=(640, 640)),
        ...     dict(type='LoadAnnotations', with_bbox=True)]
    """

    def __init__(self,
                 cache: Optional[str] = None,
                 cache_scale: Tuple[int, int] = (640, 640),
                 cache_dir: Optional[str] = None,
                 cache_interpolation: str = 'bilinear',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self._warned_resize = False
        self.cache = None
        if cache is not None:
            if cache not in ImageCache.MODES:
                raise ValueError(
                    'LoadPairedImageFromFile: `cache` must be None or one '
                    f'of {ImageCache.MODES}, got {cache!r}.')
            self.cache = ImageCache(
                cache,
                cache_scale,
                cache_dir=cache_dir,
                interpolation=cache_interpolation,
                key=f'{self.color_type}|{self.imdecode_backend}')

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
        if self.cache is not None:
            return self._load_cached(results)
        results = super().transform(results)
        if results is None:
            return None
        if results['fake_img_path'] is None:
            return self._make_fake(results)
        fake = super().transform(dict(img_path=results['fake_img_path']))
        if fake is None:
            return None
        results['fake_img'] = self._match_size(
            fake['img'], results['img'].shape[:2], results)
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

    def _decode(self, path: str) -> Optional[np.ndarray]:
        """The image as ``LoadImageFromFile`` decodes it, before any
        float conversion (None if empty and ``ignore_empty``)."""
        to_float32, self.to_float32 = self.to_float32, False
        try:
            loaded = super().transform(dict(img_path=path))
        finally:
            self.to_float32 = to_float32
        return None if loaded is None else loaded['img']

    def _load_cached(self, results: dict) -> Optional[dict]:
        """Both images from the cache, boxes scaled to match."""
        dataset = results.get('dataset')
        if dataset is not None:
            self._check_cache_fits(dataset)
        real = self.cache.load_real(results['img_path'], self._decode)
        if real is None:
            return None
        img, ori_shape, ratio = real
        online_fake = results['fake_img_path'] is None
        if online_fake:
            fake = None
        else:
            fake = self.cache.load_fake(
                results['fake_img_path'], ori_shape, self._decode,
                lambda fake_img: self._match_size(fake_img, ori_shape,
                                                  results))
            if fake is None:
                return None
        if self.to_float32:
            img = img.astype(np.float32)
            fake = fake.astype(np.float32) if fake is not None else None
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = tuple(ori_shape)
        if ratio != 1.0:
            self._rescale_boxes(results, ratio)
        if online_fake:
            # made from the cached real image, at training scale
            return self._make_fake(results)
        results['fake_img'] = fake
        return results

    @staticmethod
    def _rescale_boxes(results: dict, ratio: float) -> None:
        """Scale the boxes by ``ratio`` as ``Mosaic`` would (float32)."""
        if 'gt_bboxes' in results:
            results['gt_bboxes'].rescale_([ratio, ratio])
        factor = np.float32(ratio)
        for instance in results.get('instances', []):
            if 'bbox' in instance:
                instance['bbox'] = [
                    float(np.float32(v) * factor) for v in instance['bbox']
                ]

    def _check_cache_fits(self, dataset) -> None:
        """Estimate the cache of a data set once; raise if too large."""
        if self.cache.has_checked(id(dataset)):
            return
        shapes = []
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            if info.get('height') and info.get('width'):
                shapes.append((int(info['height']), int(info['width'])))
            else:
                width, height = check_image_file(info['img_path'])
                shapes.append((height, width))
        channels = 1 if self.color_type == 'grayscale' else 3
        self.cache.check_fits(
            id(dataset), shapes, channels,
            owner='LoadPairedImageFromFile (`cache`)')

    def _match_size(self, fake_img: np.ndarray, real_shape: Tuple[int, int],
                    results: dict) -> np.ndarray:
        """Resize ``fake_img`` to the real image's ``(h, w)`` (warn once).
        """
        real_h, real_w = real_shape
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

    def __repr__(self) -> str:
        return f'{super().__repr__()[:-1]}, cache={self.cache!r})'
