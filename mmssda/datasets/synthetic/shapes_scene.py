"""One procedurally drawn clear scene of the fog-shapes benchmark."""
from typing import Dict, Tuple, Union

import cv2
import numpy as np

from ..transforms.atmospheric_fog import ground_plane_depth

FOG_SHAPES_CLASSES = ('box', 'disc', 'triangle')


def _hsv_color(rng: np.random.Generator, sat: Tuple[float, float],
               val: Tuple[float, float]) -> np.ndarray:
    """A random BGR colour (float64, 0-255) with saturation/value ranges."""
    hsv = np.array([[[rng.uniform(0, 180), 255 * rng.uniform(*sat),
                      255 * rng.uniform(*val)]]]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float64)


def _value_noise(rng: np.random.Generator, height: int, width: int,
                 grid: int) -> np.ndarray:
    """Smooth noise (about unit std): a random grid upsampled bicubically."""
    coarse = rng.standard_normal((grid + 1, grid + 1)).astype(np.float32)
    return cv2.resize(coarse, (width, height),
                      interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, height: int, width: int,
                horizon_row: float) -> np.ndarray:
    """Sky gradient above the horizon, textured ground gradient below,
    distractor lines, arcs and soft blobs (none of which is an object).

    Returns a float32 (H, W, 3) image on the 0-255 scale.
    """
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    # sky: vertical gradient between two light, weakly saturated colours
    top = _hsv_color(rng, (0.0, 0.45), (0.55, 1.0)).astype(np.float32)
    low = _hsv_color(rng, (0.0, 0.3), (0.6, 1.0)).astype(np.float32)
    frac = np.clip(ys / max(horizon_row, 1.0), 0, 1)[..., None]  # (H, 1, 1)
    sky = top * (1 - frac) + low * frac
    # ground: linear gradient between two random colours, random direction
    c0 = _hsv_color(rng, (0.0, 0.8), (0.2, 0.9)).astype(np.float32)
    c1 = _hsv_color(rng, (0.0, 0.8), (0.2, 0.9)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    proj = np.float32(np.cos(angle)) * xs / width + \
        np.float32(np.sin(angle)) * ys / height
    proj = ((proj - proj.min()) / max(float(np.ptp(proj)), 1e-6))[..., None]
    # a soft (2 px) horizon
    alpha = np.clip((ys - horizon_row) / 2.0 + 0.5, 0, 1)[..., None]
    img = sky * (1 - alpha) + (c0 + (c1 - c0) * proj) * alpha
    # texture: three octaves of value noise, slightly tinted per channel
    texture = (rng.uniform(8, 20) * _value_noise(rng, height, width, 4) +
               rng.uniform(4, 12) * _value_noise(rng, height, width, 12) +
               rng.uniform(2, 7) * _value_noise(rng, height, width, 48))
    tint = (1 + 0.25 * rng.standard_normal(3)).astype(np.float32)
    img += texture[..., None] * tint * (0.4 + 0.6 * alpha)
    size = min(height, width)
    # distractor lines and arcs
    for _ in range(int(rng.integers(2, 7))):
        p0 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        color = tuple(float(c) for c in _hsv_color(rng, (0, 1), (0.1, 1)))
        cv2.line(img, p0, p1, color, int(rng.integers(1, 4)), cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 3))):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        radius = int(size * rng.uniform(0.05, 0.2))
        start = rng.uniform(0, 360)
        color = tuple(float(c) for c in _hsv_color(rng, (0, 1), (0.1, 1)))
        cv2.ellipse(img, center, (radius, radius), 0, start,
                    start + rng.uniform(60, 200), color,
                    int(rng.integers(1, 3)), cv2.LINE_AA)
    # soft blobs: blurred ellipses, alpha-blended inside their extent
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        axes = (int(size * rng.uniform(0.04, 0.14)),
                int(size * rng.uniform(0.04, 0.14)))
        blob_angle = rng.uniform(0, 180)
        opacity = rng.uniform(0.35, 0.75)
        color = _hsv_color(rng, (0, 1), (0.1, 1)).astype(np.float32)
        sigma = max(axes) * 0.5 + 1
        reach = int(max(axes) + 3 * sigma) + 1
        x0, y0 = max(cx - reach, 0), max(cy - reach, 0)
        x1, y1 = min(cx + reach + 1, width), min(cy + reach + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        layer = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.ellipse(layer, (cx - x0, cy - y0), axes, blob_angle, 0, 360,
                    1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), sigma)
        layer = (layer / max(float(layer.max()), 1e-6) * opacity)[..., None]
        roi = img[y0:y1, x0:x1]
        roi += (color - roi) * layer
    return img


def _object_mask(rng: np.random.Generator, label: int, cx: float, cy: float,
                 size: float, canvas: Tuple[int, int],
                 pad: int) -> np.ndarray:
    """Filled mask of one object on a canvas padded by ``pad`` per side."""
    mask = np.zeros(canvas, np.uint8)
    cx, cy = cx + pad, cy + pad
    if label == 0:  # box: rotated rectangle
        rect = ((cx, cy), (size * rng.uniform(0.6, 1.5), size),
                rng.uniform(-20, 20))
        pts = np.rint(cv2.boxPoints(rect)).astype(np.int32)
        cv2.fillConvexPoly(mask, pts, 1)
    elif label == 1:  # disc: circle or mild ellipse
        axes = (max(int(round(size / 2 * rng.uniform(0.85, 1.15))), 2),
                max(int(round(size / 2)), 2))
        cv2.ellipse(mask, (int(round(cx)), int(round(cy))), axes,
                    rng.uniform(0, 180), 0, 360, 1, -1)
    else:  # triangle: jittered equilateral, random rotation
        radius = size * 0.62
        angles = np.deg2rad(rng.uniform(0, 360) + np.array([0, 120, 240]) +
                            rng.uniform(-12, 12, 3))
        pts = np.stack([cx + radius * np.cos(angles),
                        cy + radius * np.sin(angles)], axis=1)
        cv2.fillConvexPoly(mask, np.rint(pts).astype(np.int32), 1)
    return mask.astype(bool)


def render_shapes_scene(
        rng: np.random.Generator,
        img_size: Union[int, Tuple[int, int]] = 192,
        num_objects: Tuple[int, int] = (1, 6),
        horizon: Tuple[float, float] = (0.3, 0.45),
        depth_near: float = 10.0,
        depth_far: float = 200.0,
        min_visible: float = 0.45,
        min_box: int = 5,
        noise_std: Tuple[float, float] = (1.5, 4.0)) -> Dict:
    """Draw one clear scene of the fog-shapes benchmark and its ground truth.

    The scene is a ground plane below a random horizon with a sky above:
    random colour gradients, three octaves of value-noise texture, and
    distractors that are not objects (lines, arcs, soft blurred blobs). Objects
    of the classes :data:`FOG_SHAPES_CLASSES` (rotated boxes, discs/ellipses,
    triangles) have random colours (kept distinct from the local background)
    and a linear shading; they are larger lower in the image (perspective).
    An object's depth is the ground depth at its centre row, so it is close
    to the depth of the background around it; nearer objects are drawn later
    and occlude farther ones. Objects that are less than ``min_visible``
    visible (occlusion or image border) or whose visible box is smaller than
    ``min_box`` are not drawn at all. Gaussian sensor noise is added last.

    Args:
        rng (np.random.Generator): The only source of randomness; the same
            generator state gives the same scene.
        img_size (int | tuple[int, int]): Side, or (width, height).
            Defaults to 192.
        num_objects (tuple[int, int]): Inclusive range of objects tried per
            scene (fewer remain if some are too occluded). Defaults to (1, 6).
        horizon (tuple[float, float]): Range of the horizon row as a fraction
            of the height. Defaults to (0.3, 0.45).
        depth_near (float): Depth of the bottom row. Defaults to 10.0.
        depth_far (float): Depth of the sky. Defaults to 200.0.
        min_visible (float): Smallest visible fraction of an object's full
            area. Defaults to 0.45.
        min_box (int): Smallest side, in pixels, of a visible box.
            Defaults to 5.
        noise_std (tuple[float, float]): Range of the sensor noise std (0-255
            scale). Defaults to (1.5, 4.0).

    Returns:
        dict: With keys

        - ``img`` (np.ndarray): the clear image, (H, W, 3) uint8 BGR.
        - ``background`` (np.ndarray): the same scene without the objects
          (same texture, distractors and noise), (H, W, 3) uint8.
        - ``depth`` (np.ndarray): float32 (H, W) depth of every pixel.
        - ``instance_map`` (np.ndarray): int32 (H, W); 0 is background,
          ``k`` the visible pixels of instance ``k - 1``.
        - ``labels`` (np.ndarray): int64 (N,) class indices into
          :data:`FOG_SHAPES_CLASSES`.
        - ``bboxes`` (np.ndarray): float32 (N, 4) tight ``x1, y1, x2, y2``
          boxes of the visible pixels, ``x2``/``y2`` exclusive (max + 1).
        - ``horizon`` (float): the horizon row as a fraction of H.
    """
    if isinstance(img_size, int):
        width = height = img_size
    else:
        width, height = (int(v) for v in img_size)
    lo, hi = num_objects
    if not 0 <= lo <= hi:
        raise ValueError(f'num_objects must be a (min, max) range, got '
                         f'{num_objects}')
    horizon_frac = float(rng.uniform(*horizon))
    horizon_row = horizon_frac * height
    depth = ground_plane_depth(height, width, horizon_frac, depth_near,
                               depth_far)
    background = _background(rng, height, width, horizon_row)
    img = background.copy()
    instance_map = np.zeros((height, width), np.int32)
    side = min(height, width)

    # propose objects
    proposals = []
    pad = int(side * 0.6)
    canvas = (height + 2 * pad, width + 2 * pad)
    for _ in range(int(rng.integers(lo, hi + 1))):
        label = int(rng.integers(len(FOG_SHAPES_CLASSES)))
        cy = horizon_row + (height - horizon_row) * rng.uniform(0.12, 0.97)
        persp = (cy - horizon_row) / (height - horizon_row)
        size = side * rng.uniform(0.1, 0.24) * (0.45 + 0.75 * persp)
        cx = rng.uniform(0, width)
        full = _object_mask(rng, label, cx, cy, size, canvas, pad)
        proposals.append(
            dict(label=label, cy=cy, size=size, cx=cx,
                 area=int(full.sum()),
                 mask=full[pad:pad + height, pad:pad + width]))
    # decide visibility from the nearest (lowest centre) to the farthest
    proposals.sort(key=lambda p: -p['cy'])
    occluder = np.zeros((height, width), bool)
    kept = []
    for prop in proposals:
        visible = prop['mask'] & ~occluder
        if prop['area'] == 0 or visible.sum() < min_visible * prop['area']:
            continue
        ys, xs = np.nonzero(visible)
        if xs.max() - xs.min() + 1 < min_box or \
                ys.max() - ys.min() + 1 < min_box:
            continue
        occluder |= prop['mask']
        kept.append(prop)
    # paint from far to near; the instance map ends up with visible pixels
    kept.reverse()
    for index, prop in enumerate(kept, start=1):
        mask = prop['mask']
        ys, xs = np.nonzero(mask)
        bg_mean = background[ys, xs].mean(axis=0)
        for _ in range(20):
            color = _hsv_color(rng, (0.25, 1.0), (0.25, 1.0))
            if np.abs(color - bg_mean).sum() >= 90:
                break
        shade_dir = rng.uniform(0, 2 * np.pi)
        shade = 1 + rng.uniform(0, 0.35) * (
            (xs - prop['cx']) * np.cos(shade_dir) +
            (ys - prop['cy']) * np.sin(shade_dir)) / prop['size']
        img[ys, xs] = np.clip(color * shade[:, None], 0, 255)
        row = int(np.clip(prop['cy'], 0, height - 1))
        depth[mask] = depth[row, 0]
        instance_map[mask] = index
    # sensor noise, shared by the image and its object-free background
    noise = rng.standard_normal((height, width, 3), np.float32) * \
        np.float32(rng.uniform(*noise_std))
    img = np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)
    background = np.clip(np.rint(background + noise), 0,
                         255).astype(np.uint8)

    labels = np.array([p['label'] for p in kept], np.int64)
    bboxes = np.zeros((len(kept), 4), np.float32)
    for index in range(len(kept)):
        ys_k, xs_k = np.nonzero(instance_map == index + 1)
        bboxes[index] = (xs_k.min(), ys_k.min(), xs_k.max() + 1,
                         ys_k.max() + 1)
    return dict(
        img=img,
        background=background,
        depth=depth,
        instance_map=instance_map,
        labels=labels,
        bboxes=bboxes,
        horizon=horizon_frac)
