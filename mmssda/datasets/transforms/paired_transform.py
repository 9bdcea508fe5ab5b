import copy
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmdet.structures.bbox import BaseBoxes

from mmssda.registry import TRANSFORMS

# Transforms whose randomness is not (fully) drawn through
# ``cache_randomness`` methods, so two passes would draw different values;
# maps the class name to the advice given when one is wrapped.
UNPAIRABLE_TRANSFORMS = {
    'Mosaic': 'use PairedMosaic (outside PairedTransform)',
    'Mosaic9': 'not supported for pairs',
    'CachedMosaic': 'use PairedMosaic (outside PairedTransform)',
    'MixUp': 'not supported for pairs',
    'CachedMixUp': 'not supported for pairs',
    'YOLOv5MixUp': 'not supported for pairs',
    'YOLOXMixUp': 'not supported for pairs',
    'YOLOv5HSVRandomAug': 'use PairedYOLOv5HSVRandomAug (outside '
    'PairedTransform)',
    'YOLOXHSVRandomAug': 'not supported for pairs',
    'PhotoMetricDistortion': 'not supported for pairs',
    'PPYOLOERandomDistort': 'not supported for pairs',
    'YOLOv5CopyPaste': 'not supported for pairs',
    'CopyPaste': 'not supported for pairs',
    'Albu': 'not supported for pairs',
    'RandAugment': 'not supported for pairs',
    'AutoAugment': 'not supported for pairs',
    'PairedTransform': 'do not nest PairedTransform',
}
_MISSING = object()


def _leaf_transforms(transforms) -> Iterator[BaseTransform]:
    """The transforms and, recursively, those they contain (as mmcv's
    ``cache_random_params`` walks them)."""
    if isinstance(transforms, BaseTransform):
        yield transforms
    if isinstance(transforms, Iterable) and not isinstance(
            transforms, (str, bytes, dict)):
        for t in transforms:
            yield from _leaf_transforms(t)


def _random_methods(transform: BaseTransform) -> Dict[str, Callable]:
    """Name -> plain function of ``transform``'s ``cache_randomness``
    methods (as resolved on its class)."""
    methods = {}
    for name in getattr(type(transform), '_methods_with_randomness', ()):
        for cls in type(transform).__mro__:
            if name in cls.__dict__:
                attr = cls.__dict__[name]
                if isinstance(attr, cache_randomness):
                    methods[name] = attr.func
                break
    return methods


@contextmanager
def share_random_draws(transforms) -> Iterator[None]:
    """In this context each ``cache_randomness`` method of the transforms
    returns, on every call, the value of its first call (per instance).

    A replacement for mmcv's ``cache_random_params``, which is wrong as soon
    as a process holds two instances of one transform class (e.g. the
    source and the target ``PairedTransform`` each wrap a
    ``YOLOv5RandomAffine``): a ``cache_randomness`` method is one object per
    class that remembers only the last instance it was looked up on, and
    after the first context the method sits in each instance's ``__dict__``,
    so it is no longer looked up at all. Its cache then reads the flag of
    another instance: in one of the pipelines the real and the fake image got
    independent draws (different flips and affine matrices, boxes fitting
    only the real image), and which pipeline depended on the order of the
    samples the process had loaded before (a resumed run differed from an
    uninterrupted one). Here the cached functions are bound per instance and
    the instances are left as they were.

    Args:
        transforms (BaseTransform | Iterable): Transforms (nested iterables
            of transforms are walked).
    """
    patched = []
    try:
        for t in _leaf_transforms(transforms):
            if getattr(t, 'avoid_cache_randomness', False):
                raise RuntimeError(
                    f'{type(t).__name__} is decorated with '
                    '`avoid_cache_randomness`: its random draws cannot be '
                    'shared by the two images of a pair.')
            for name, func in _random_methods(t).items():
                cache = {}

                def cached(*args, _func=func, _t=t, _cache=cache, **kwargs):
                    if 'value' not in _cache:
                        _cache['value'] = _func(_t, *args, **kwargs)
                    return _cache['value']

                patched.append((t, name, t.__dict__.get(name, _MISSING)))
                setattr(t, name, cached)
        yield
    finally:
        for t, name, old in reversed(patched):
            if old is _MISSING:
                t.__dict__.pop(name, None)
            else:
                setattr(t, name, old)


# Keys of the real results that never go into the fake view. ``instances``
# (the raw annotations, already loaded into ``gt_*``) was the one container
# the fake view deep-copied: 3% of a cached 640 px batch.
_REAL_ONLY_KEYS = ('img', 'fake_img', 'dataset', 'mix_results', 'instances',
                   'gt_masks', 'gt_keypoints', 'gt_keypoints_visible',
                   'gt_seg_map')
_BOX_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags')


def empty_box_fields(results: dict) -> dict:
    """Empty ``gt_bboxes``/``gt_bboxes_labels``/``gt_ignore_flags`` of the
    same types as those in ``results`` (only the keys present).

    Args:
        results (dict): Results holding (some of) the box keys.

    Returns:
        dict: New, empty values; nothing shared with ``results``.
    """
    empty = {}
    for key in _BOX_KEYS:
        if key not in results:
            continue
        value = results[key]
        if isinstance(value, BaseBoxes):
            empty[key] = value.empty_boxes()
        else:
            value = np.asarray(value)
            empty[key] = np.zeros((0, *value.shape[1:]), dtype=value.dtype)
    return empty


@TRANSFORMS.register_module()
class PairedTransform(BaseTransform):
    """Apply transforms to both images of a pair with the same random draws.

    The wrapped transforms run twice inside :func:`share_random_draws`
    (mmcv's ``cache_random_params`` done per instance): once on the real
    results (``img`` and the boxes), then on a fake view (``fake_img`` as
    ``img``, empty boxes of the same box type, a copy of the other meta).
    Methods decorated with ``cache_randomness`` return in the second pass
    what they drew in the first, so flip direction, affine matrix, resize
    scale, crop offset, ... are the same for both images, and boxes are
    transformed once (by the real pass). The fake view's image replaces
    ``fake_img``; every other key comes from the real pass.

    Covered (randomness in ``cache_randomness`` methods or none at all):
    ``YOLOv5RandomAffine``, ``mmdet.RandomFlip``, ``mmdet.RandomResize``,
    ``mmdet.RandomCrop``, ``LetterResize``, ``YOLOv5KeepRatioResize``,
    ``mmdet.Resize``, ``mmdet.Pad``. Transforms known not to be covered
    (``Mosaic``, ``YOLOv5HSVRandomAug``, ``MixUp``, photometric
    distortions, ...) raise ``ValueError`` when the wrapper is built; the
    paired versions are ``PairedMosaic`` and ``PairedYOLOv5HSVRandomAug``.

    Required Keys:

    - img
    - fake_img (same shape as img)

    Modified Keys:

    - img, fake_img, and whatever the wrapped transforms modify.

    Args:
        transforms (Sequence[dict | BaseTransform]): Transforms to apply to
            both images.

    Example:
        >>> dict(type='PairedTransform', transforms=[
        ...     dict(type='YOLOv5RandomAffine', max_rotate_degree=0.0,
        ...          max_shear_degree=0.0, scaling_ratio_range=(0.5, 1.5),
        ...          border=(-320, -320), border_val=(114, 114, 114)),
        ...     dict(type='mmdet.RandomFlip', prob=0.5)])
    """

    def __init__(self, transforms: Sequence[Union[dict, BaseTransform]]):
        if isinstance(transforms, (dict, BaseTransform)):
            transforms = [transforms]
        self.transforms: List[BaseTransform] = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in transforms
        ]
        for t in self.transforms:
            self._check_pairable(t)

    @staticmethod
    def _check_pairable(transform: BaseTransform) -> None:
        """Raise ValueError for transforms whose draws cannot be shared."""
        for cls in type(transform).__mro__:
            if cls.__name__ in UNPAIRABLE_TRANSFORMS:
                raise ValueError(
                    f'PairedTransform cannot share the random draws of '
                    f'{type(transform).__name__}: its randomness is not '
                    'drawn through `cache_randomness` methods; '
                    f'{UNPAIRABLE_TRANSFORMS[cls.__name__]}.')

    def transform(self, results: dict) -> Optional[dict]:
        """Run the transforms on the real results and on the fake view.

        Args:
            results (dict): Results with ``img`` and ``fake_img``.

        Returns:
            dict | None: The real pass's results with ``fake_img`` replaced
            by the fake pass's image, or None if the real pass filtered the
            sample out.
        """
        if 'fake_img' not in results:
            raise KeyError(
                'PairedTransform needs results["fake_img"] (load with '
                'LoadPairedImageFromFile); transforms that should act on '
                'the real image only go outside PairedTransform.')
        fake_view = self._fake_view(results)
        with share_random_draws(self.transforms):
            results = self._apply(results)
            if results is None:
                return None
            fake_view = self._apply(fake_view)
        if fake_view is None:
            raise RuntimeError(
                f'PairedTransform: {self.transforms} dropped the fake image '
                'but kept the real one.')
        results['fake_img'] = fake_view['img']
        return results

    @staticmethod
    def _fake_view(results: dict) -> dict:
        """The fake image with empty boxes and a deep copy of the meta, so
        in-place updates (e.g. ``pad_param``) cannot leak between passes."""
        view = {
            key: copy.deepcopy(value)
            for key, value in results.items()
            if key not in _REAL_ONLY_KEYS and key not in _BOX_KEYS
        }
        view.update(empty_box_fields(results))
        view['img'] = results['fake_img']
        return view

    def _apply(self, results: dict) -> Optional[dict]:
        """Run the wrapped transforms in order; stop at a None."""
        for t in self.transforms:
            results = t(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(transforms={self.transforms})'
