"""Fourier Domain Adaptation: training-free style translation.

Yang & Soatto, "FDA: Fourier Domain Adaptation for Semantic Segmentation"
(CVPR 2020). The low-frequency part of an image's amplitude spectrum carries
its "style" (global colour, illumination, haze), the phase its content. FDA
replaces the amplitudes in a small centred square of the (shifted) spectrum
by those of a reference image of the other domain and keeps the phase.

The numeric core :func:`fda_transfer` works on plain numpy arrays, so the
synthetic data generator and the offline tool
``tools/misc/make_fake_images.py`` share it with the pipeline transform
:class:`FDAStyleTransfer`.
"""
import os.path as osp
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.fileio import get

from mmssda.registry import TRANSFORMS
from mmssda.utils.file_scan import list_files

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def fda_window(height: int, width: int, beta: float) -> int:
    """Half-size ``b = floor(min(H, W) * beta)`` of FDA's low-freq window.

    The swapped window is the ``(2b+1) x (2b+1)`` square centred on the zero
    frequency of the shifted spectrum (frequencies ``-b..b`` along both
    axes). ``beta == 0`` means no swap at all (returned as -1).

    Args:
        height (int): Image height H.
        width (int): Image width W.
        beta (float): Window size as a fraction of min(H, W), in [0, 0.5).

    Returns:
        int: The half-size b, or -1 for ``beta == 0``.
    """
    if not 0.0 <= beta < 0.5:
        raise ValueError(f'FDA beta must be in [0, 0.5), got {beta}')
    if beta == 0:
        return -1
    return int(np.floor(min(height, width) * beta))


def fda_transfer(img: np.ndarray,
                 ref: np.ndarray,
                 beta: float = 0.01,
                 clip: bool = True) -> np.ndarray:
    """Give ``img`` the low-frequency amplitude spectrum of ``ref``.

    Per channel: ``F = fft2(img)``; in the centred window of half-size
    ``b = floor(min(H, W) * beta)`` (see :func:`fda_window`) the amplitude
    ``|F|`` is replaced by the reference's, the phase of ``img`` is kept, and
    the inverse transform's real part is returned. The reference is resized
    (bilinear) to the image size first; a grey reference is given the image's
    channel count.

    Args:
        img (np.ndarray): Image to translate, (H, W, C) or (H, W), on the
            0-255 scale (usually uint8 BGR).
        ref (np.ndarray): Reference image of the other domain, any size,
            (h, w, C) or (h, w).
        beta (float): Window half-size as a fraction of min(H, W), in
            [0, 0.5); 0 returns the image unchanged. Yang & Soatto use 0.01
            to 0.09; 0.01-0.05 transfers colour, brightness and haze without
            visible ringing. Defaults to 0.01.
        clip (bool): Round and clip to uint8. If False, return the unclipped
            float64 result. Defaults to True.

    Returns:
        np.ndarray: Translated image, the shape of ``img``; uint8 if ``clip``
        else float64.
    """
    img = np.asarray(img)
    ref = np.asarray(ref)
    if img.ndim not in (2, 3) or ref.ndim not in (2, 3):
        raise ValueError(f'FDA expects (H, W) or (H, W, C) images, got '
                         f'shapes {img.shape} and {ref.shape}')
    h, w = img.shape[:2]
    half = fda_window(h, w, beta)
    src = img.astype(np.float64)
    if half < 0:
        if not clip:
            return src
        if img.dtype == np.uint8:
            return img.copy()
        return np.clip(np.rint(src), 0, 255).astype(np.uint8)
    if ref.shape[:2] != (h, w):
        ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_LINEAR)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if ref.ndim == 2 and channels > 1:
        ref = np.repeat(ref[..., None], channels, axis=2)
    elif ref.ndim == 3 and img.ndim == 2:
        ref = ref.mean(axis=2)
    elif ref.ndim == 3 and ref.shape[2] != channels:
        raise ValueError(f'FDA reference has {ref.shape[2]} channels, the '
                         f'image {channels}')
    ref = ref.astype(np.float64)

    # Only the (2b+1)^2 window changes, so instead of two full FFTs the
    # window's DFT coefficients are computed directly (E_h @ x @ E_w^T) and
    # the amplitude change is added back with the inverse DFT restricted to
    # the window; this equals the full-FFT formulation exactly. The large
    # products are done as real matrix products (numpy's complex matmul is
    # much slower).
    freqs = np.arange(-half, half + 1)
    k = len(freqs)
    ang_h = -2 * np.pi * np.outer(freqs, np.arange(h)) / h  # (K, H)
    cos_h, sin_h = np.cos(ang_h), np.sin(ang_h)
    e_w = np.exp(-2j * np.pi * np.outer(freqs, np.arange(w)) / w)  # (K, W)

    def window_dft(x: np.ndarray) -> np.ndarray:
        x = x.reshape(h, -1)  # (H, W*C)
        rows = (cos_h @ x + 1j * (sin_h @ x)).reshape(k, w, -1)
        return np.einsum('kwc,lw->klc', rows, e_w)  # (K, K, C)

    coef_src = window_dft(src)
    delta = (np.abs(window_dft(ref)) - np.abs(coef_src)) * np.exp(
        1j * np.angle(coef_src))
    cols = np.einsum('klc,lw->kwc', delta, e_w.conj()).reshape(k, -1)
    # Re(conj(E_h)^T @ cols), with conj(E_h) = cos_h - i sin_h
    back = cos_h.T @ cols.real + sin_h.T @ cols.imag
    out = src + back.reshape(src.shape) / (h * w)
    if not clip:
        return out
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def list_images(path: Union[str, Sequence[str]]) -> List[str]:
    """Image files named by a folder, a list file, or a list of paths.

    Args:
        path (str | Sequence[str]): A folder (searched recursively for
            ``IMG_EXTENSIONS``, sorted, each file once however many folder
            links reach it: :func:`mmssda.utils.file_scan.list_files`), a
            text file with one image path per
            line (relative paths are relative to the file's folder; blank
            lines and lines starting with ``#`` are skipped), or a list of
            image paths.

    Returns:
        list[str]: The image paths, never empty.
    """
    if not isinstance(path, str):
        files = [str(p) for p in path]
        source = 'the given list'
    elif osp.isdir(path):
        files = list_files(path, IMG_EXTENSIONS, owner='reference images')
        source = f'folder {path!r}'
    elif osp.isfile(path):
        base = osp.dirname(osp.abspath(path))
        with open(path) as f:
            lines = [ln.strip() for ln in f]
        files = [
            ln if osp.isabs(ln) else osp.join(base, ln) for ln in lines
            if ln and not ln.startswith('#')
        ]
        source = f'list file {path!r}'
    else:
        raise FileNotFoundError(f'reference images: {path!r} is neither a '
                                'folder nor a list file')
    if not files:
        raise ValueError(f'no reference images found in {source}')
    return files


@TRANSFORMS.register_module()
class FDAStyleTransfer(BaseTransform):
    """Translate an image to another domain's style with FDA, online.

    Picks a random reference image of the other domain, resizes it to the
    image size and swaps the low-frequency amplitude spectrum (Yang & Soatto
    2020; see :func:`fda_transfer`). Reads ``results[img_key]`` and writes
    ``results[out_key]`` (uint8, same shape), so an mmssda config can create
    the fake image of a pair online when no CUT/CycleGAN fakes exist on disk;
    the chosen reference's path goes to ``results['fda_ref_path']``.

    Required Keys:

    - img (np.uint8, (H, W, 3)) — the key given by ``img_key``

    Added Keys:

    - fake_img (np.uint8, (H, W, 3)) — the key given by ``out_key``
    - fda_ref_path (str)

    Example:
        >>> # source pair: fake = source image in the target (fog) style
        >>> pipeline = [
        ...     dict(type='LoadImageFromFile'),
        ...     dict(type='FDAStyleTransfer',
        ...          ref_path='data/fogshapes/target/images',
        ...          beta=(0.01, 0.05)),
        ... ]

    Args:
        ref_path (str | Sequence[str]): Reference images of the other domain:
            a folder (recursive), a text file with one path per line, or a
            list of paths (see :func:`list_images`).
        beta (float | tuple[float, float]): Window half-size as a fraction of
            min(H, W), or a (min, max) range sampled per image; in [0, 0.5).
            0 copies the image. Yang & Soatto use 0.01-0.09; 0.01-0.05 is
            the useful range (larger windows ring). Defaults to 0.01.
        img_key (str): Key of the input image. Defaults to 'img'.
        out_key (str): Key the translated image is written to; may equal
            ``img_key``. Defaults to 'fake_img'.
        prob (float): Probability of translating; otherwise ``out_key``
            receives a copy of the image. Defaults to 1.0.
        cache_size (int): How many decoded references to keep in memory
            (least recently used are dropped); 0 disables the cache.
            Defaults to 256.
        seed (int, optional): Seed of a private random generator (reference
            choice, beta, prob) for reproducible output; None uses numpy's
            global generator, which MMEngine seeds per dataloader worker.
            Defaults to None.
        backend_args (dict, optional): File backend arguments for
            :func:`mmengine.fileio.get`. Defaults to None.
    """

    def __init__(self,
                 ref_path: Union[str, Sequence[str]],
                 beta: Union[float, Tuple[float, float]] = 0.01,
                 img_key: str = 'img',
                 out_key: str = 'fake_img',
                 prob: float = 1.0,
                 cache_size: int = 256,
                 seed: Optional[int] = None,
                 backend_args: Optional[dict] = None) -> None:
        self.ref_files = list_images(ref_path)
        self.ref_path = ref_path
        if isinstance(beta, (int, float)):
            beta = (float(beta), float(beta))
        beta = tuple(float(b) for b in beta)
        if len(beta) != 2 or beta[0] > beta[1]:
            raise ValueError(f'FDA beta must be a number or a (min, max) '
                             f'pair, got {beta}')
        for b in beta:
            fda_window(1, 1, b)  # range check
        self.beta = beta
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.img_key = img_key
        self.out_key = out_key
        self.cache_size = int(cache_size)
        self.seed = seed
        self.backend_args = backend_args
        # None: numpy's global generator, looked up at call time (a module
        # attribute would not pickle into dataloader workers)
        self._rng = np.random.RandomState(seed) if seed is not None \
            else None
        self._ref_cache: 'OrderedDict[str, np.ndarray]' = OrderedDict()

    @cache_randomness
    def _sample_params(self) -> Tuple[bool, int, float]:
        """Draw (apply, reference index, beta)."""
        rng = self._rng if self._rng is not None else np.random
        apply = bool(rng.uniform() < self.prob)
        index = int(rng.randint(len(self.ref_files)))
        beta = float(rng.uniform(*self.beta))
        return apply, index, beta

    def _load_ref(self, path: str) -> np.ndarray:
        """Decode a reference image (BGR uint8), through the LRU cache."""
        if path in self._ref_cache:
            self._ref_cache.move_to_end(path)
            return self._ref_cache[path]
        try:
            img_bytes = get(path, backend_args=self.backend_args)
            ref = mmcv.imfrombytes(img_bytes, flag='color', backend='cv2')
        except Exception as exc:
            raise OSError(f'FDAStyleTransfer cannot read reference image '
                          f'{path!r}: {exc}') from exc
        if ref is None:
            raise OSError(f'FDAStyleTransfer cannot decode reference image '
                          f'{path!r}')
        if self.cache_size > 0:
            self._ref_cache[path] = ref
            while len(self._ref_cache) > self.cache_size:
                self._ref_cache.popitem(last=False)
        return ref

    def transform(self, results: dict) -> dict:
        """Write the FDA-translated ``results[img_key]`` to ``out_key``.

        Args:
            results (dict): Result dict with ``img_key``.

        Returns:
            dict: ``results`` with ``out_key`` and ``fda_ref_path`` added.
        """
        if self.img_key not in results:
            raise KeyError(f'FDAStyleTransfer needs results[{self.img_key!r}]'
                           f'; available keys: {sorted(results)}')
        img = results[self.img_key]
        apply, index, beta = self._sample_params()
        if not apply:
            results[self.out_key] = img.copy()
            results['fda_ref_path'] = None
            return results
        path = self.ref_files[index]
        ref = self._load_ref(path)
        results[self.out_key] = self.translate(img, ref, beta)
        results['fda_ref_path'] = path
        return results

    def translate(self, img: np.ndarray, ref: np.ndarray,
                  beta: float) -> np.ndarray:
        """The image in the reference's style (here :func:`fda_transfer`).

        Subclasses with another translation override this method only; the
        reference choice, ``prob``, the reference cache and the result keys
        stay this class's.

        Args:
            img (np.ndarray): The image, uint8 (H, W, C).
            ref (np.ndarray): The decoded reference, uint8, any size.
            beta (float): The drawn window size.

        Returns:
            np.ndarray: uint8 (H, W, C).
        """
        return fda_transfer(img, ref, beta)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ref_path={self.ref_path!r} '
                f'({len(self.ref_files)} images), beta={self.beta}, '
                f'img_key={self.img_key!r}, out_key={self.out_key!r}, '
                f'prob={self.prob}, cache_size={self.cache_size}, '
                f'seed={self.seed})')
