from typing import Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.structures.bbox import BaseBoxes

from mmssda.registry import TRANSFORMS

# Keys whose values fix where objects are in the image; a strong view must
# leave them as they were.
_GEOMETRY_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags',
                  'img_shape', 'scale_factor', 'flip', 'flip_direction',
                  'pad_param')


def _as_array(value) -> np.ndarray:
    """A numpy view of a box/label/meta value for comparison."""
    if isinstance(value, BaseBoxes):
        value = value.tensor
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _same(a, b) -> bool:
    """Whether two geometry values are equal (arrays by shape and value)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (str, bool)) or isinstance(b, (str, bool)):
        return type(a) is type(b) and a == b
    a, b = _as_array(a), _as_array(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


@TRANSFORMS.register_module()
class StrongView(BaseTransform):
    """Photometric-only augmentation of the real image of a pair: the
    student's strong view.

    In SSDA-YOLO the teacher predicts pseudo-labels on ``target_fake`` and
    the student learns them on the paired ``target_real``. Put after every
    geometric transform (right before :class:`PackPairedDetInputs`), this
    wrapper gives the student's image a stronger view (colour jitter, blur,
    grayscale, erasing, block masking) while the teacher's ``fake_img``
    keeps the weak one, the recipe in the style of Unbiased Teacher and
    Align-and-Distill (ALDI). Pseudo-boxes still fit because only pixel
    values change.

    It applies ``transforms`` to ``img`` of pairs whose ``domain`` is in
    ``domains`` and passes other pairs through untouched, so one pipeline
    can serve the source and the target :class:`PairedDataset`. The wrapped
    transforms never see ``fake_img``, and the wrapper enforces that they
    are photometric: after each of them the image must keep its shape and
    the boxes, labels, ignore flags and geometric meta (``img_shape``,
    ``scale_factor``, ``flip``, ``flip_direction``, ``pad_param`` and a
    ``homography_matrix``, which mmdet's geometric transforms update)
    must be unchanged; otherwise a ``ValueError`` names the transform. The
    wrapped transforms get a copy of the real image, so one that writes into
    it in place cannot reach an array shared elsewhere.

    Randomness comes from the wrapped transforms. Use ones that draw from
    numpy's global generator (mmdet/mmcv/mmssda transforms,
    :class:`SeededAlbu` for albumentations; not ``mmdet.Albu``, whose
    albumentations generator is seeded from the OS) and the view is
    reproducible under a seed and restored on resume by
    ``RandomStateHook``.

    Required Keys:

    - img
    - fake_img
    - domain

    Modified Keys:

    - img (only for pairs of ``domains``)

    Args:
        transforms (Sequence[dict | BaseTransform]): Photometric transforms
            for the real image, applied in order. Empty: a no-op.
        domains (Sequence[str]): Domains whose real image gets the strong
            view. Defaults to ``('target', )`` (the student's
            ``target_real``).

    Example:
        >>> dict(type='StrongView', transforms=[
        ...     dict(type='SeededAlbu', transforms=[
        ...         dict(type='ColorJitter', brightness=0.4, contrast=0.4,
        ...              saturation=0.4, hue=0.1, p=0.8),
        ...         dict(type='ToGray', method='average', p=0.2),
        ...         dict(type='GaussianBlur', sigma_limit=(0.1, 2.0),
        ...              p=0.5)]),
        ...     dict(type='RandomBlockMask', block_size=32, mask_ratio=0.5,
        ...          prob=0.5)])
    """

    def __init__(self,
                 transforms: Sequence[Union[dict, BaseTransform]],
                 domains: Sequence[str] = ('target', )) -> None:
        if isinstance(transforms, (dict, BaseTransform)):
            transforms = [transforms]
        self.transforms = [
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in transforms
        ]
        if isinstance(domains, str):
            domains = (domains, )
        unknown = set(domains) - {'source', 'target'}
        if unknown:
            raise ValueError(
                f'StrongView: domains must be "source" and/or "target", '
                f'got {sorted(unknown)}')
        self.domains = tuple(domains)

    def transform(self, results: dict) -> dict:
        """Give the real image of a pair of ``domains`` its strong view.

        Args:
            results (dict): Pipeline results of a :class:`PairedDataset`
                sample (``img``, ``fake_img``, ``domain``).

        Returns:
            dict: The results; only ``img`` differs, and only for pairs of
            ``domains``.
        """
        domain = results.get('domain')
        if domain not in ('source', 'target'):
            raise KeyError(
                'StrongView needs results["domain"] in ("source", '
                f'"target"), got {domain!r}; wrap the dataset in '
                'PairedDataset.')
        if 'fake_img' not in results:
            raise KeyError(
                'StrongView needs results["fake_img"] (load with '
                'LoadPairedImageFromFile): it augments the real image of a '
                'pair and keeps the fake one as it is.')
        if domain not in self.domains or not self.transforms:
            return results
        fake_img = results.pop('fake_img')
        img_shape = results.get('img_shape')
        results['img'] = results['img'].copy()
        has_homography = 'homography_matrix' in results
        if not has_homography:
            results['homography_matrix'] = np.eye(3, dtype=np.float32)
        try:
            for t in self.transforms:
                before = self._geometry(results)
                results = t(results)
                if results is None:
                    raise ValueError(
                        f'StrongView: {t!r} dropped the sample; a strong '
                        'view may change pixel values only.')
                self._check_geometry(t, before, self._geometry(results))
        finally:
            if results is not None:
                results['fake_img'] = fake_img
        if not has_homography:
            results.pop('homography_matrix')
        if img_shape is not None:  # the same (h, w): keep the value's form
            results['img_shape'] = img_shape
        return results

    @staticmethod
    def _geometry(results: dict) -> dict:
        """Copies of what a photometric transform may not change."""
        geometry = {
            key: _as_array(results[key]).copy()
            if not isinstance(results[key], (str, bool, type(None))) else
            results[key]
            for key in (*_GEOMETRY_KEYS, 'homography_matrix')
            if key in results
        }
        if 'img_shape' in geometry:  # (h, w) or (h, w, c) by transform
            geometry['img_shape'] = geometry['img_shape'][:2]
        geometry['img.shape'] = results['img'].shape
        return geometry

    @staticmethod
    def _check_geometry(transform: BaseTransform, before: dict,
                        after: dict) -> None:
        """Raise ValueError if ``transform`` changed any geometry."""
        changed = [
            key for key in sorted(set(before) | set(after))
            if not _same(before.get(key), after.get(key))
        ]
        if changed:
            raise ValueError(
                f'StrongView: {transform!r} changed {", ".join(changed)} '
                f'(image shape {before["img.shape"]} -> '
                f'{after["img.shape"]}); a strong view may change pixel '
                'values only, so that the teacher\'s pseudo-boxes still fit. '
                'Geometric transforms go into PairedTransform, before the '
                'strong view.')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transforms}, '
                f'domains={self.domains})')
