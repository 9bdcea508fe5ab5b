"""No translated images: the fake of a pair is its real image."""
from mmcv.transforms import BaseTransform

from mmssda.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RealAsFake(BaseTransform):
    """Use a copy of the real image as the fake of its pair.

    For a user without any translated images: as the only transform of a
    ``PairedDataset``'s ``fake_pipeline`` (with ``fake_root=None``) it makes
    every pair (real, copy of real), so the four-stream recipe becomes plain
    mean-teacher domain adaptation (the setting of Adaptive Teacher and
    ALDI): the teacher predicts on the target-real image (through its
    copy) and the student learns from the source labels and from the
    pseudo-labels on target-real. The source-fake stream would repeat the
    source-real one and the consistency term would be zero by construction,
    so :class:`SSDAIterBasedTrainLoop` refuses a model that still trains
    on ``source_fake`` or has a ``consistency_loss`` when the source set's
    fakes are its reals (``configs/ssda_yolov5n_fog_shapes_no_fakes.py``
    sets both). A copy, not the same array: the paired transforms write
    each image of a pair separately.

    Required Keys:

    - img (np.ndarray) — the key given by ``img_key``

    Added Keys:

    - fake_img (np.ndarray) — the key given by ``out_key``

    Example:
        >>> source_train_dataset = dict(
        ...     type='PairedDataset', domain='source', fake_root=None,
        ...     fake_pipeline=[dict(type='RealAsFake')], dataset=...)

    Args:
        img_key (str): Key of the real image. Defaults to 'img'.
        out_key (str): Key the copy is written to. Defaults to 'fake_img'.
    """

    def __init__(self, img_key: str = 'img', out_key: str = 'fake_img'):
        self.img_key = img_key
        self.out_key = out_key

    def transform(self, results: dict) -> dict:
        """Write a copy of ``results[img_key]`` to ``results[out_key]``.

        Args:
            results (dict): Result dict with ``img_key``.

        Returns:
            dict: ``results`` with ``out_key`` added.
        """
        if self.img_key not in results:
            raise KeyError(f'RealAsFake needs results[{self.img_key!r}]; '
                           f'available keys: {sorted(results)}')
        results[self.out_key] = results[self.img_key].copy()
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(img_key={self.img_key!r}, '
                f'out_key={self.out_key!r})')
