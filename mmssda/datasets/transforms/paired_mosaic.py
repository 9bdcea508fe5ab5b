from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmyolo.datasets.transforms import Mosaic
from numpy import random

from mmssda.registry import TRANSFORMS
from .load_paired_image_from_file import LoadPairedImageFromFile
from .paired_transform import empty_box_fields

_LOCATIONS = ('top_left', 'top_right', 'bottom_left', 'bottom_right')


@TRANSFORMS.register_module()
class PairedMosaic(Mosaic):
    """YOLOv5 mosaic of a pair: the fake mosaic uses the same partners and
    the same centre as the real one.

    Partners are drawn once (:class:`mmyolo.datasets.transforms.Mosaic`
    draws their indexes in ``transform``) and loaded through
    ``pre_transform``, which must contain :class:`LoadPairedImageFromFile` so
    that each partner carries its ``fake_img``. The real mosaic is the one
    ``Mosaic`` builds (same centre draw, placement, scaling and boxes); the
    fake mosaic is made of the ``fake_img`` of the same four samples, each
    pasted where its real image went. Both are built in one pass and the
    boxes are transformed once; an image that already fits its cell (e.g.
    from the image cache at ``img_scale``) is pasted without a resize.

    Required Keys:

    - img, fake_img
    - gt_bboxes (BaseBoxes[torch.float32])
    - gt_bboxes_labels (np.int64)
    - gt_ignore_flags (bool)
    - dataset (a :class:`PairedDataset`, unless ``use_cached``)

    Modified Keys:

    - img, fake_img: (2 * img_scale[1], 2 * img_scale[0], 3)
    - img_shape
    - gt_bboxes, gt_bboxes_labels, gt_ignore_flags

    Args:
        img_scale (tuple[int, int]): (width, height) of one mosaic cell.
            Defaults to (640, 640).
        pre_transform (Sequence[dict]): Loading pipeline of the partners;
            must include ``LoadPairedImageFromFile``. Required unless
            ``use_cached``.
        **kwargs: Other :class:`mmyolo.datasets.transforms.Mosaic` arguments
            (``center_ratio_range``, ``bbox_clip_border``, ``pad_val``,
            ``prob``, ``use_cached``, ``max_cached_images``, ``random_pop``,
            ``max_refetch``).

    Example:
        >>> pre_transform = [
        ...     dict(type='LoadPairedImageFromFile'),
        ...     dict(type='LoadAnnotations', with_bbox=True)]
        >>> dict(type='PairedMosaic', img_scale=(640, 640), pad_val=114.0,
        ...      pre_transform=pre_transform)
    """

    def __init__(self,
                 img_scale: tuple = (640, 640),
                 pre_transform: Sequence[Union[dict, BaseTransform]] = None,
                 use_cached: bool = False,
                 **kwargs) -> None:
        if pre_transform is not None:
            pre_transform = [
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pre_transform
            ]
        if not use_cached and not any(
                isinstance(t, LoadPairedImageFromFile)
                for t in pre_transform or []):
            raise ValueError(
                'PairedMosaic: `pre_transform` must include '
                'LoadPairedImageFromFile so that the mosaic partners carry '
                f'their fake images; got {pre_transform}.')
        super().__init__(
            img_scale=img_scale,
            pre_transform=pre_transform,
            use_cached=use_cached,
            **kwargs)

    def mix_img_transform(self, results: dict) -> dict:
        """Build the real and the fake mosaic in one pass.

        One centre draw; each of the four samples is scaled to its cell
        (not at all when it already fits, e.g. from the image cache: no
        copy), and its real and its fake image are pasted at the same place
        into their own canvas. The boxes are transformed once. Samples with
        masks or keypoints take :meth:`_mix_twice`.

        Args:
            results (dict): Results with ``mix_results`` (the partners).

        Returns:
            dict: The real mosaic results with the fake mosaic in
            ``fake_img``.
        """
        samples = [results, *results['mix_results']]
        self._check_fakes(samples)
        if any('gt_masks' in s or 'gt_keypoints' in s for s in samples):
            return self._mix_twice(results)
        img_scale_w, img_scale_h = self.img_scale
        canvases = [
            np.full((int(img_scale_h * 2), int(img_scale_w * 2),
                     *results[key].shape[2:]),
                    self.pad_val,
                    dtype=results[key].dtype) for key in ('img', 'fake_img')
        ]
        center = (int(random.uniform(*self.center_ratio_range) * img_scale_w),
                  int(random.uniform(*self.center_ratio_range) * img_scale_h))
        bboxes, labels, ignore_flags = [], [], []
        for loc, sample in zip(_LOCATIONS, samples):
            for canvas, key in zip(canvases, ('img', 'fake_img')):
                img, ratio = self._fit_to_cell(sample[key])
                (x1_p, y1_p, x2_p, y2_p), (x1_c, y1_c, x2_c, y2_c) = \
                    self._mosaic_combine(loc, center, img.shape[1::-1])
                canvas[y1_p:y2_p, x1_p:x2_p] = img[y1_c:y2_c, x1_c:x2_c]
                if key == 'img':
                    sample_bboxes = sample['gt_bboxes']
                    if ratio != 1:
                        sample_bboxes.rescale_([ratio, ratio])
                    sample_bboxes.translate_([x1_p - x1_c, y1_p - y1_c])
                    bboxes.append(sample_bboxes)
                    labels.append(sample['gt_bboxes_labels'])
                    ignore_flags.append(sample['gt_ignore_flags'])
        bboxes = bboxes[0].cat(bboxes, 0)
        labels = np.concatenate(labels, 0)
        ignore_flags = np.concatenate(ignore_flags, 0)
        mosaic_hw = [2 * img_scale_h, 2 * img_scale_w]
        if self.bbox_clip_border:
            bboxes.clip_(mosaic_hw)
        else:
            inside = bboxes.is_inside(mosaic_hw).numpy()
            bboxes, labels, ignore_flags = (bboxes[inside], labels[inside],
                                            ignore_flags[inside])
        results['img'], results['fake_img'] = canvases
        results['img_shape'] = canvases[0].shape
        results['gt_bboxes'] = bboxes
        results['gt_bboxes_labels'] = labels
        results['gt_ignore_flags'] = ignore_flags
        return results

    def _fit_to_cell(self, img: np.ndarray) -> Tuple[np.ndarray, float]:
        """``img`` scaled (keeping its ratio) to fit one cell, and the
        ratio; ``img`` itself when it already fits exactly."""
        h, w = img.shape[:2]
        ratio = min(self.img_scale[1] / h, self.img_scale[0] / w)
        size = (int(w * ratio), int(h * ratio))
        if size == (w, h):
            return img, ratio
        return mmcv.imresize(img, size), ratio

    def _mix_twice(self, results: dict) -> dict:
        """The parent's mosaic on the real images, then on the fake images
        of the same samples, replaying the numpy random state so that the
        centre is the same draw. The fake pass works on fresh empty boxes,
        so the in-place box operations of ``Mosaic`` (``rescale_``,
        ``translate_``) can never touch the real boxes."""
        fake_view = self._fake_view(results)
        state = np.random.get_state()
        results = super().mix_img_transform(results)
        state_after = np.random.get_state()
        np.random.set_state(state)
        fake_view = super().mix_img_transform(fake_view)
        np.random.set_state(state_after)
        results['fake_img'] = fake_view['img']
        return results

    @staticmethod
    def _check_fakes(samples: Sequence[dict]) -> None:
        """Raise KeyError if a sample was loaded without its fake image."""
        missing = [s.get('img_path') for s in samples if 'fake_img' not in s]
        if missing:
            raise KeyError(
                f'PairedMosaic: no `fake_img` for {missing}; load the '
                'sample and the partners with LoadPairedImageFromFile.')

    @staticmethod
    def _fake_view(results: dict) -> dict:
        """Fake images of the sample and its partners, with empty boxes."""
        samples = [results, *results['mix_results']]
        views = [
            dict(img=s['fake_img'], **empty_box_fields(s)) for s in samples
        ]
        return dict(views[0], mix_results=views[1:])
