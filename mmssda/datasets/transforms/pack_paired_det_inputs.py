from typing import Optional, Sequence

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import PackDetInputs

from mmssda.registry import TRANSFORMS

STREAMS = ('source_real', 'source_fake', 'target_real', 'target_fake')


@TRANSFORMS.register_module()
class PackPairedDetInputs(BaseTransform):
    """Pack a pair into ``MultiBranchDataPreprocessor``'s four streams.

    Each image of the pair is packed by :class:`mmdet.datasets.transforms.
    PackDetInputs` with the same ``gt_instances``; the streams of the other
    domain are None (dropped by the preprocessor after collation). The fake
    sample's ``img_path`` is the fake image's path; both samples carry
    ``fake_img_path`` and ``domain`` when they are in ``meta_keys``.

    Output for a pair whose ``results['domain']`` is ``'source'``::

        {'inputs': {'source_real': Tensor(3, H, W),
                    'source_fake': Tensor(3, H, W),
                    'target_real': None, 'target_fake': None},
         'data_samples': {'source_real': DetDataSample,
                          'source_fake': DetDataSample,
                          'target_real': None, 'target_fake': None}}

    Required Keys:

    - img, fake_img, domain
    - gt_bboxes, gt_bboxes_labels, gt_ignore_flags (optional)

    Args:
        meta_keys (Sequence[str]): Keys copied into the samples' metainfo.
            Defaults to ``('img_id', 'img_path', 'fake_img_path', 'domain',
            'ori_shape', 'img_shape', 'scale_factor', 'flip',
            'flip_direction')``.

    Example:
        >>> dict(type='PackPairedDetInputs',
        ...      meta_keys=('img_id', 'img_path', 'fake_img_path', 'domain',
        ...                 'ori_shape', 'img_shape', 'flip',
        ...                 'flip_direction'))
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_id', 'img_path',
                                             'fake_img_path', 'domain',
                                             'ori_shape', 'img_shape',
                                             'scale_factor', 'flip',
                                             'flip_direction')) -> None:
        self.meta_keys = tuple(meta_keys)
        self.packer = PackDetInputs(meta_keys=self.meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack the real and the fake image into their domain's streams.

        Args:
            results (dict): Pipeline results of a :class:`PairedDataset`
                sample.

        Returns:
            dict: ``inputs`` and ``data_samples``, each keyed by the four
            stream names.
        """
        domain = results.get('domain')
        if domain not in ('source', 'target'):
            raise KeyError(
                'PackPairedDetInputs needs results["domain"] in '
                f'("source", "target"), got {domain!r}; wrap the dataset in '
                'PairedDataset.')
        if 'fake_img' not in results:
            raise KeyError('PackPairedDetInputs needs results["fake_img"] '
                           '(load with LoadPairedImageFromFile).')
        real = self.packer(_packing_view(results, results['img']))
        # None: made online, the sample keeps the real image's path
        fake = self.packer(
            _packing_view(results, results['fake_img'],
                          results.get('fake_img_path')))
        packed = dict(
            inputs={s: None
                    for s in STREAMS},
            data_samples={s: None
                          for s in STREAMS})
        for side, out in (('real', real), ('fake', fake)):
            packed['inputs'][f'{domain}_{side}'] = out['inputs']
            packed['data_samples'][f'{domain}_{side}'] = out['data_samples']
        return packed

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


def _packing_view(results: dict,
                  img: np.ndarray,
                  img_path: Optional[str] = None) -> dict:
    """A shallow view of ``results`` to pack one image of the pair: its
    ``img`` is :func:`_planar` of ``img``, and its ``img_path`` is
    ``img_path`` when given."""
    results = dict(results)
    results['img'] = _planar(img)
    if img_path is not None:
        results['img_path'] = img_path
    return results


def _planar(img: np.ndarray) -> np.ndarray:
    """``img`` as the (H, W, C) view of its (C, H, W) planes.

    For a C-contiguous (H, W, C) uint8 or float32 image with at most 4
    channels, or the horizontally flipped view of one (``np.flip(img,
    axis=1)``, what ``RandomFlip`` returns); anything else is returned as
    it is (``PackDetInputs`` transposes it itself).
    """
    if not (isinstance(img, np.ndarray) and img.ndim == 3
            and 1 <= img.shape[2] <= 4
            and img.dtype in (np.uint8, np.float32)):
        return img
    flipped = not img.flags.c_contiguous
    source = img[:, ::-1] if flipped else img
    if not source.flags.c_contiguous:
        return img
    planes = np.empty((img.shape[2], *img.shape[:2]), img.dtype)
    split = cv2.split(source, list(planes))
    if any(out.ctypes.data != plane.ctypes.data
           for out, plane in zip(split, planes)):
        planes = np.stack(split)  # an OpenCV that did not write into them
    if flipped:
        for plane in planes:
            cv2.flip(plane, 1, dst=plane)
    return planes.transpose(1, 2, 0)
