"""Synthetic fog with the atmospheric scattering model of Foggy Cityscapes.

Sakaridis et al. (IJCV 2018) fog a clear image ``R`` with the optical model
``I = R * t + A * (1 - t)``, ``t = exp(-beta * depth)``, where ``A`` is the
atmospheric light (airlight) and ``beta`` the attenuation coefficient
(Foggy Cityscapes uses 0.005, 0.01 and 0.02 with depth in metres, i.e. a
meteorological optical range of 600, 300 and 150 m).

The numeric core (:func:`ground_plane_depth`, :func:`apply_atmospheric_fog`)
works on plain numpy arrays, so the synthetic data generator and the offline
tool ``tools/misc/make_fake_images.py`` share it with the pipeline transform
:class:`AtmosphericFog`.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmssda.registry import TRANSFORMS

Range = Union[float, Tuple[float, float]]


def ground_plane_depth(height: int,
                       width: int,
                       horizon: float = 0.4,
                       near: float = 10.0,
                       far: float = 200.0) -> np.ndarray:
    """Depth of a flat ground seen by a level camera, sky above the horizon.

    A ground point imaged ``v`` rows below the horizon lies at a distance
    proportional to ``1 / v``; the bottom row is at ``near`` and every row at
    or above the horizon (sky) at ``far``. The map is constant along rows and
    smooth in ``y``, so fog computed from it leaves no outlines.

    Args:
        height (int): Image height H in pixels.
        width (int): Image width W in pixels.
        horizon (float): Row of the horizon as a fraction of H, in [0, 1).
            Defaults to 0.4.
        near (float): Depth of the bottom row. Defaults to 10.0.
        far (float): Depth of the sky and the cap of the ground.
            Defaults to 200.0.

    Returns:
        np.ndarray: float32 depth map of shape (H, W), values in
        [near, far].
    """
    if height < 1 or width < 1:
        raise ValueError(f'depth map size must be positive, got '
                         f'{height}x{width}')
    if not 0.0 <= horizon < 1.0:
        raise ValueError(f'horizon must be in [0, 1), got {horizon}')
    if not 0.0 < near <= far:
        raise ValueError(f'need 0 < near <= far, got near={near}, '
                         f'far={far}')
    rows = np.arange(height, dtype=np.float64) + 0.5
    horizon_row = horizon * height
    below = np.maximum(rows - horizon_row, 0.0)
    with np.errstate(divide='ignore'):
        depth = near * (height - horizon_row) / below
    depth = np.clip(depth, near, far)
    return np.repeat(depth[:, None], width, axis=1).astype(np.float32)


def apply_atmospheric_fog(img: np.ndarray,
                          depth: np.ndarray,
                          beta: Union[float, np.ndarray],
                          airlight: Union[float, Sequence[float]] = 0.85,
                          clip: bool = True) -> np.ndarray:
    """Fog an image: ``I = R * t + A * (1 - t)``, ``t = exp(-beta * depth)``.

    Args:
        img (np.ndarray): Clear image R, (H, W, C) or (H, W), uint8 in
            [0, 255] (any real dtype is read on the 0-255 scale).
        depth (np.ndarray): Scene depth, shape (H, W), in the units of
            ``1 / beta``.
        beta (float | np.ndarray): Attenuation coefficient, >= 0; a scalar or
            a map broadcastable to (H, W) (heterogeneous fog). 0 leaves the
            image unchanged.
        airlight (float | Sequence[float]): Atmospheric light A in [0, 1]
            (1 = white); a scalar (grey) or one value per channel.
            Defaults to 0.85.
        clip (bool): Round and clip the result to uint8. If False, return the
            unclipped float64 result on the 0-255 scale. Defaults to True.

    Returns:
        np.ndarray: Fogged image with the shape of ``img``; uint8 if ``clip``
        else float64.
    """
    img = np.asarray(img)
    depth = np.asarray(depth, dtype=np.float64)
    if depth.shape != img.shape[:2]:
        raise ValueError(f'depth shape {depth.shape} does not match the '
                         f'image size {img.shape[:2]}')
    beta = np.asarray(beta, dtype=np.float64)
    if np.any(beta < 0):
        raise ValueError('fog beta must be >= 0')
    airlight = np.asarray(airlight, dtype=np.float64)
    if np.any(airlight < 0) or np.any(airlight > 1):
        raise ValueError(f'airlight must be in [0, 1], got {airlight}')
    trans = np.exp(-beta * depth)
    if img.ndim == 3:
        trans = trans[..., None]
    out = img.astype(np.float64) * trans + 255.0 * airlight * (1.0 - trans)
    if not clip:
        return out
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _check_range(name: str, value: Range, low: float,
                 high: float) -> Tuple[float, float]:
    """Turn a scalar or (min, max) pair into a validated (min, max) pair."""
    if isinstance(value, (int, float)):
        pair = (float(value), float(value))
    else:
        pair = tuple(float(v) for v in value)
        if len(pair) != 2 or pair[0] > pair[1]:
            raise ValueError(f'{name} must be a number or a (min, max) pair, '
                             f'got {value}')
    if pair[0] < low or pair[1] > high:
        raise ValueError(f'{name} must lie in [{low}, {high}], got {value}')
    return pair


@TRANSFORMS.register_module()
class AtmosphericFog(BaseTransform):
    """Add synthetic fog with the atmospheric scattering model.

    Computes ``I = R * t + A * (1 - t)`` with ``t = exp(-beta * depth)``
    (Foggy Cityscapes' model) from ``results[img_key]`` and writes the result
    to ``results[out_key]``; the input image is left as it is. The depth is
    read from ``results[depth_key]`` when present, otherwise a ground-plane
    depth (:func:`ground_plane_depth`: vertical gradient from ``near`` at the
    bottom row to ``far`` at and above the horizon) is used. ``beta`` and
    ``airlight`` may be (min, max) ranges, sampled uniformly per image.

    Required Keys:

    - img (np.uint8, (H, W, 3)) — the key given by ``img_key``
    - depth (np.float, (H, W), optional) — the key given by ``depth_key``

    Added Keys:

    - fake_img (np.uint8, (H, W, 3)) — the key given by ``out_key``

    Example:
        >>> # a foggy fake of the real image, made online (mmssda pipeline)
        >>> pipeline = [
        ...     dict(type='LoadImageFromFile'),
        ...     dict(type='AtmosphericFog', beta=(0.01, 0.03),
        ...          airlight=(0.75, 0.95), out_key='fake_img'),
        ... ]

    Args:
        beta (float | tuple[float, float]): Attenuation coefficient in units
            of 1/depth, or a (min, max) range. With the default depth
            (10 at the bottom row, 200 in the sky) 0.02 gives a transmission
            of 0.82 at the bottom and 0.02 in the sky. Defaults to 0.02.
        airlight (float | tuple[float, float]): Grey atmospheric light A in
            [0, 1], or a (min, max) range. Defaults to 0.85.
        img_key (str): Key of the clear input image. Defaults to 'img'.
        out_key (str): Key the fogged image is written to; may equal
            ``img_key`` to fog in place. Defaults to 'fake_img'.
        depth_key (str, optional): Key of a per-image depth map of the image's
            size; None always uses the default depth. Defaults to 'depth'.
        horizon (float): Horizon row of the default depth, as a fraction of
            the height. Defaults to 0.4.
        near (float): Depth of the bottom row of the default depth.
            Defaults to 10.0.
        far (float): Depth of the sky in the default depth. Defaults to 200.0.
        seed (int, optional): Seed of a private random generator for the
            sampled ``beta``/``airlight``, for reproducible output; None uses
            numpy's global generator (seeded per worker by MMEngine).
            Defaults to None.
    """

    def __init__(self,
                 beta: Range = 0.02,
                 airlight: Range = 0.85,
                 img_key: str = 'img',
                 out_key: str = 'fake_img',
                 depth_key: Optional[str] = 'depth',
                 horizon: float = 0.4,
                 near: float = 10.0,
                 far: float = 200.0,
                 seed: Optional[int] = None) -> None:
        self.beta = _check_range('beta', beta, 0.0, float('inf'))
        self.airlight = _check_range('airlight', airlight, 0.0, 1.0)
        self.img_key = img_key
        self.out_key = out_key
        self.depth_key = depth_key
        # validates horizon/near/far once, at build time
        ground_plane_depth(2, 1, horizon, near, far)
        self.horizon = horizon
        self.near = near
        self.far = far
        self.seed = seed
        # None: numpy's global generator, looked up at call time (a module
        # attribute would not pickle into dataloader workers)
        self._rng = np.random.RandomState(seed) if seed is not None \
            else None

    @cache_randomness
    def _sample_params(self) -> Tuple[float, float]:
        """Draw (beta, airlight) uniformly from their ranges."""
        rng = self._rng if self._rng is not None else np.random
        beta = float(rng.uniform(*self.beta))
        airlight = float(rng.uniform(*self.airlight))
        return beta, airlight

    def transform(self, results: dict) -> dict:
        """Write the fogged ``results[img_key]`` to ``results[out_key]``.

        Args:
            results (dict): Result dict with ``img_key`` (and optionally
                ``depth_key``).

        Returns:
            dict: ``results`` with ``out_key`` added.
        """
        if self.img_key not in results:
            raise KeyError(f'AtmosphericFog needs results[{self.img_key!r}]; '
                           f'available keys: {sorted(results)}')
        img = results[self.img_key]
        h, w = img.shape[:2]
        if self.depth_key is not None and \
                results.get(self.depth_key) is not None:
            depth = np.asarray(results[self.depth_key])
            if depth.shape != (h, w):
                raise ValueError(
                    f'AtmosphericFog: results[{self.depth_key!r}] has shape '
                    f'{depth.shape} but results[{self.img_key!r}] is '
                    f'{h}x{w}; apply geometric transforms after the fog or '
                    'to the depth as well')
        else:
            depth = ground_plane_depth(h, w, self.horizon, self.near,
                                       self.far)
        beta, airlight = self._sample_params()
        results[self.out_key] = apply_atmospheric_fog(img, depth, beta,
                                                      airlight)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(beta={self.beta}, '
                f'airlight={self.airlight}, img_key={self.img_key!r}, '
                f'out_key={self.out_key!r}, depth_key={self.depth_key!r}, '
                f'horizon={self.horizon}, near={self.near}, far={self.far}, '
                f'seed={self.seed})')
