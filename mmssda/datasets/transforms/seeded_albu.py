from typing import List, Optional

import numpy as np
from mmdet.datasets.transforms import Albu

from mmssda.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SeededAlbu(Albu):
    """:class:`mmdet.datasets.transforms.Albu` whose albumentations draws
    are seeded from numpy's global generator.

    albumentations (>= 1.4) draws from its own generator, seeded from the
    OS: ``mmdet.Albu`` gives other images on every run whatever the
    experiment's seed, and a resumed run cannot restore its state. Here each
    call first draws one integer from ``numpy.random`` and seeds the
    albumentations pipeline with it, so the output is a function of numpy's
    global state (which MMEngine seeds per worker and ``RandomStateHook``
    saves and restores).

    By default only the image is handed to albumentations
    (``keymap={'img': 'image'}``): the photometric use of
    :class:`StrongView`, where boxes must not change. Pass ``keymap`` and
    ``bbox_params`` as for ``mmdet.Albu`` to transform boxes too.

    Required Keys:

    - img (np.uint8)

    Modified Keys:

    - img (np.uint8)
    - img_shape

    Args:
        transforms (list[dict]): albumentations transforms, by their
            albumentations names (``ColorJitter``, ``GaussianBlur``,
            ``ToGray``, ``CoarseDropout``, ...).
        bbox_params (dict, optional): As for ``mmdet.Albu``. Defaults to
            None.
        keymap (dict, optional): Results key -> albumentations key.
            Defaults to ``{'img': 'image'}``.
        skip_img_without_anno (bool): As for ``mmdet.Albu``. Defaults to
            False.

    Example:
        >>> dict(type='SeededAlbu', transforms=[
        ...     dict(type='ColorJitter', brightness=0.4, contrast=0.4,
        ...          saturation=0.4, hue=0.1, p=0.8),
        ...     dict(type='GaussianBlur', sigma_limit=(0.1, 2.0), p=0.5)])
    """

    def __init__(self,
                 transforms: List[dict],
                 bbox_params: Optional[dict] = None,
                 keymap: Optional[dict] = None,
                 skip_img_without_anno: bool = False) -> None:
        super().__init__(
            transforms,
            bbox_params=bbox_params,
            keymap=keymap or {'img': 'image'},
            skip_img_without_anno=skip_img_without_anno)
        if not hasattr(self.aug, 'set_random_seed'):
            raise RuntimeError(
                'SeededAlbu needs albumentations >= 2.0 '
                '(Compose.set_random_seed); see requirements/stack.txt.')

    def transform(self, results: dict) -> Optional[dict]:
        """Seed albumentations from numpy's generator, then apply it.

        Args:
            results (dict): The result dict.

        Returns:
            dict | None: As ``mmdet.Albu``.
        """
        self.aug.set_random_seed(int(np.random.randint(0, 2**31 - 1)))
        return super().transform(results)
