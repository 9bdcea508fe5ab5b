from typing import Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmyolo.datasets.transforms import Mosaic

from mmssda.registry import TRANSFORMS
from .load_paired_image_from_file import LoadPairedImageFromFile
from .paired_transform import empty_box_fields


@TRANSFORMS.register_module()
class PairedMosaic(Mosaic):
    """YOLOv5 mosaic of a pair: the fake mosaic uses the same partners and
    the same centre as the real one.

    Partners are drawn once (:class:`mmyolo.datasets.transforms.Mosaic`
    draws their indexes in ``transform``) and loaded through
    ``pre_transform``, which must contain :class:`LoadPairedImageFromFile` so
    that each partner carries its ``fake_img``. The real mosaic is built as
    by ``Mosaic``; the fake mosaic is then built from the ``fake_img`` of the
    same four samples, replaying the numpy random state so that the centre
    is the same draw. The fake pass works on fresh empty boxes, so the
    in-place box operations of ``Mosaic`` (``rescale_``, ``translate_``) can
    never touch the real boxes, which are transformed once.

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
        """Build the real mosaic, then the fake one with the same draws.

        Args:
            results (dict): Results with ``mix_results`` (the partners).

        Returns:
            dict: The real mosaic results with the fake mosaic in
            ``fake_img``.
        """
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
    def _fake_view(results: dict) -> dict:
        """Fake images of the sample and its partners, with empty boxes."""
        samples = [results, *results['mix_results']]
        missing = [s.get('img_path') for s in samples if 'fake_img' not in s]
        if missing:
            raise KeyError(
                f'PairedMosaic: no `fake_img` for {missing}; load the '
                'sample and the partners with LoadPairedImageFromFile.')
        views = [
            dict(img=s['fake_img'], **empty_box_fields(s)) for s in samples
        ]
        return dict(views[0], mix_results=views[1:])
