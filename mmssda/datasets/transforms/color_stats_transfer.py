"""Global colour and contrast transfer: the weakest useful fake."""
from typing import Optional, Sequence, Union

import numpy as np

from mmssda.registry import TRANSFORMS
from .fda_style_transfer import FDAStyleTransfer


def color_stats_transfer(img: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Give ``img`` the per-channel mean and standard deviation of ``ref``.

    ``out_c = (img_c - mean(img_c)) * std(ref_c) / std(img_c) + mean(ref_c)``
    per channel ``c``, rounded and clipped to uint8 (Reinhard et al. 2001,
    in the image's own colour space). A global affine map per channel: it
    moves brightness, tint and contrast towards the reference but cannot
    add anything that depends on the position in the image (fog that
    thickens with depth, shadows, texture).

    Args:
        img (np.ndarray): uint8 image (H, W, C).
        ref (np.ndarray): uint8 reference (H', W', C), any size.

    Returns:
        np.ndarray: uint8 (H, W, C).
    """
    if img.ndim != 3 or ref.ndim != 3 or img.shape[2] != ref.shape[2]:
        raise ValueError('color_stats_transfer needs two (H, W, C) images '
                         f'with the same channels, got {img.shape} and '
                         f'{ref.shape}')
    src = img.reshape(-1, img.shape[2]).astype(np.float32)
    tgt = ref.reshape(-1, ref.shape[2]).astype(np.float32)
    src_mean, src_std = src.mean(0), src.std(0)
    tgt_mean, tgt_std = tgt.mean(0), tgt.std(0)
    # a flat channel has no contrast to rescale: it only moves its mean
    gain = np.where(src_std > 1e-3, tgt_std / np.maximum(src_std, 1e-3), 1.)
    out = (src - src_mean) * gain + tgt_mean
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(img.shape)


@TRANSFORMS.register_module()
class ColorStatsTransfer(FDAStyleTransfer):
    """Translate an image to another domain's global colour statistics.

    The same reference handling as :class:`FDAStyleTransfer` (a random
    image of the other domain per call, ``prob``, the reference cache,
    ``out_key``), with :func:`color_stats_transfer` instead of the Fourier
    amplitude swap: each channel gets the reference's mean and standard
    deviation. It is the fake a user has when all they can do is match
    colours: much weaker than FDA (which also moves the low spatial
    frequencies, e.g. a haze gradient) and than CUT/CycleGAN fakes.

    Required Keys:

    - img (np.uint8, (H, W, C)) — the key given by ``img_key``

    Added Keys:

    - fake_img (np.uint8, (H, W, C)) — the key given by ``out_key``
    - fda_ref_path (str): the reference used (None when not applied)

    Example:
        >>> source_train_dataset = dict(
        ...     type='PairedDataset', domain='source', fake_root=None,
        ...     fake_pipeline=[dict(type='ColorStatsTransfer',
        ...                         ref_path='data/target/images/')],
        ...     dataset=...)

    Args:
        ref_path (str | Sequence[str]): Reference images of the other
            domain: a folder (recursive), a list file or a list of paths.
        img_key (str): Key of the input image. Defaults to 'img'.
        out_key (str): Key the translated image is written to. Defaults to
            'fake_img'.
        prob (float): Probability of translating; otherwise ``out_key``
            receives a copy. Defaults to 1.0.
        cache_size (int): Decoded references kept in memory. Defaults to
            256.
        seed (int, optional): Seed of a private generator; None uses
            numpy's global one. Defaults to None.
        backend_args (dict, optional): File backend arguments. Defaults to
            None.
    """

    def __init__(self,
                 ref_path: Union[str, Sequence[str]],
                 img_key: str = 'img',
                 out_key: str = 'fake_img',
                 prob: float = 1.0,
                 cache_size: int = 256,
                 seed: Optional[int] = None,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(
            ref_path,
            beta=0.0,
            img_key=img_key,
            out_key=out_key,
            prob=prob,
            cache_size=cache_size,
            seed=seed,
            backend_args=backend_args)

    def translate(self, img: np.ndarray, ref: np.ndarray,
                  beta: float) -> np.ndarray:
        """The image with ``ref``'s per-channel mean and std (``beta`` is
        not used)."""
        return color_stats_transfer(img, ref)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ref_path={self.ref_path!r} '
                f'({len(self.ref_files)} images), img_key={self.img_key!r}, '
                f'out_key={self.out_key!r}, prob={self.prob}, '
                f'cache_size={self.cache_size}, seed={self.seed})')
