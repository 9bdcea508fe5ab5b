"""Generator of the built-in clear-to-fog domain-adaptation benchmark."""
import json
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from ..transforms.atmospheric_fog import apply_atmospheric_fog
from ..transforms.fda_style_transfer import fda_transfer
from .shapes_scene import FOG_SHAPES_CLASSES, render_shapes_scene

# split name -> (seed stream id, fogged, labelled train split with fakes)
_SPLITS = {
    'source': (0, False, True),
    'target': (1, True, True),
    'target_val': (2, True, False),
    'source_val': (3, False, False),
}
_FAKE_OF = {'source': 'source_fake', 'target': 'target_fake'}
_OWN_FILE = re.compile(r'^(source|target|target_val|source_val)_\d{6}'
                       r'\.(jpg|txt|png)$')
# sub-streams of one image's seed; _POOL (with index 0) picks a split's
# FDA reference pool
_SCENE, _FOG, _FDA, _POOL = 0, 1, 2, 3


def _image_rng(seed: int, split: str, index: int,
               stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, _SPLITS[split][0], index, stream])


def _as_range(name: str, value) -> Tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    pair = tuple(float(v) for v in value)
    if len(pair) != 2 or pair[0] > pair[1]:
        raise ValueError(f'{name} must be a number or a (min, max) pair, '
                         f'got {value}')
    return pair


def _prepare_out_dir(out_dir: str, overwrite: bool) -> int:
    """Create ``out_dir``; refuse a non-empty one unless ``overwrite``.

    With ``overwrite`` only files this generator writes (by name) are
    removed, so a smaller re-generation leaves no stale images; anything else
    is kept. Returns the number of files removed.
    """
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise NotADirectoryError(f'{out_dir!r} exists and is not a folder')
    if not osp.isdir(out_dir) or not os.listdir(out_dir):
        os.makedirs(out_dir, exist_ok=True)
        return 0
    if not overwrite:
        raise FileExistsError(
            f'{out_dir!r} is not empty; choose an empty folder or pass '
            'overwrite=True (--overwrite) to replace a fog-shapes data set')
    removed = 0
    for sub in [*_SPLITS, *_FAKE_OF.values()]:
        for kind in ('images', 'labels', 'masks'):
            folder = osp.join(out_dir, sub, kind)
            if not osp.isdir(folder):
                continue
            for name in os.listdir(folder):
                if _OWN_FILE.match(name):
                    os.remove(osp.join(folder, name))
                    removed += 1
    own = [osp.join(out_dir, 'annotations', f'{s}.json') for s in _SPLITS]
    for path in [*own, osp.join(out_dir, 'meta.json')]:
        if osp.isfile(path):
            os.remove(path)
            removed += 1
    return removed


def _encode_jpg(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('JPEG encoding failed')
    return buf.tobytes()


def _fog_beta_map(rng: np.random.Generator, shape: Tuple[int, int],
                  beta: float, heterogeneity: float) -> np.ndarray:
    """``beta`` modulated by smooth noise in [1 - het, 1 + het]."""
    if heterogeneity == 0:
        return np.full(shape, beta)
    coarse = rng.uniform(-1, 1, (4, 4)).astype(np.float32)
    noise = cv2.resize(coarse, (shape[1], shape[0]),
                       interpolation=cv2.INTER_CUBIC)
    noise = np.clip(noise, -1, 1).astype(np.float64)
    return beta * (1 + heterogeneity * noise)


def generate_fog_shapes(out_dir: str,
                        seed: int = 0,
                        num_source: int = 400,
                        num_target: int = 400,
                        num_val: int = 100,
                        num_source_val: Optional[int] = None,
                        img_size: Union[int, Tuple[int, int]] = 192,
                        num_objects: Tuple[int, int] = (1, 6),
                        fog: bool = True,
                        fog_beta: Union[float, Tuple[float,
                                                     float]] = (0.02, 0.04),
                        fog_airlight: Union[float,
                                            Tuple[float,
                                                  float]] = (0.75, 0.95),
                        fog_heterogeneity: float = 0.25,
                        depth_near: float = 10.0,
                        depth_far: float = 200.0,
                        source_fake_fda_beta: float = 0.02,
                        target_fake_fda_beta: float = 0.01,
                        fda_pool_size: int = 256,
                        jpeg_quality: int = 95,
                        save_masks: bool = False,
                        overwrite: bool = False) -> Dict:
    """Write the fog-shapes clear-to-fog domain-adaptation data set.

    Source scenes are clear; target scenes (different seed streams, so
    different scenes) are fogged with Foggy Cityscapes' scattering model
    ``I = R * t + A * (1 - t)``, ``t = exp(-beta * depth)``
    (:func:`~mmssda.datasets.transforms.atmospheric_fog.apply_atmospheric_fog`)
    over each scene's own depth map (a ground plane; objects at the ground
    depth of their centre row, so fog leaves no halo). Per image, ``beta``
    and the grey airlight ``A`` are drawn from their ranges and ``beta`` is
    modulated by smooth noise (``fog_heterogeneity``). The fakes are made
    with FDA (:func:`~mmssda.datasets.transforms.fda_style_transfer.
    fda_transfer`): ``source_fake`` = source image with the low-frequency
    amplitude of a random ``target`` image, ``target_fake`` = target image
    with that of a random ``source`` image (validation images are never
    used as references). Everything is determined by ``seed``.

    Layout (stems ``<split>_<index:06d>``, equal between real and fake)::

        out_dir/source/images/*.jpg      source/labels/*.txt     (clear)
        out_dir/source_fake/images/*.jpg                         (fog style)
        out_dir/target/images/*.jpg      target/labels/*.txt     (fog)
        out_dir/target_fake/images/*.jpg                         (clear style)
        out_dir/target_val/images/*.jpg  target_val/labels/*.txt (fog)
        out_dir/source_val/images/*.jpg  source_val/labels/*.txt (clear)
        out_dir/<split>/masks/*.png      (only with ``save_masks``)
        out_dir/annotations/{source,target,target_val,source_val}.json
        out_dir/meta.json

    Labels are YOLO txt (``cls cx cy w h``, normalised, one object per
    line) and COCO json (category ids 1..3, ``bbox`` = ``[x, y, w, h]``,
    ``file_name`` = the image's base name, ``area`` = visible pixel count)
    of the same boxes: the tight box of each object's visible pixels, with
    exclusive right/bottom edges (``x2 = max column + 1``), inside the image.
    Masks are uint8 PNGs where value ``k`` marks the visible pixels of the
    object on label line ``k`` (1-based).

    Example:
        >>> from mmssda.datasets.synthetic import generate_fog_shapes
        >>> meta = generate_fog_shapes('data/fogshapes', seed=0)
        >>> meta['counts']['target_val']['images']
        100

    Args:
        out_dir (str): Output folder; must be empty or absent.
        seed (int): Seed of everything. Defaults to 0.
        num_source (int): Labelled clear training images. Defaults to 400.
        num_target (int): Foggy training images. Defaults to 400.
        num_val (int): Foggy held-out images (``target_val``).
            Defaults to 100.
        num_source_val (int, optional): Clear held-out images
            (``source_val``); None means ``num_val``. Defaults to None.
        img_size (int | tuple[int, int]): Side, or (width, height).
            Defaults to 192.
        num_objects (tuple[int, int]): Objects tried per scene (inclusive
            range). Defaults to (1, 6).
        fog (bool): Fog the target splits; False writes them clear (for
            analysis: the same scenes without fog). Defaults to True.
        fog_beta (float | tuple[float, float]): Attenuation coefficient (or
            range), in 1/depth units: the bottom row is at depth
            ``depth_near``, the sky at ``depth_far``; objects then keep a
            transmission t of 0.57 (median), under 0.2 for the farthest 5%.
            Defaults to (0.02, 0.04).
        fog_airlight (float | tuple[float, float]): Grey airlight A in
            [0, 1] (or range). Defaults to (0.75, 0.95).
        fog_heterogeneity (float): Relative amplitude, in [0, 1), of the
            smooth spatial modulation of beta. Defaults to 0.25.
        depth_near (float): Depth of the bottom row. Defaults to 10.0.
        depth_far (float): Depth of the sky. Defaults to 200.0.
        source_fake_fda_beta (float): FDA window half-size, as a fraction
            of the image side in [0, 0.5), for ``source_fake`` (clear to
            fog). Defaults to 0.02.
        target_fake_fda_beta (float): The same for ``target_fake`` (fog to
            clear); larger windows turn fog into coloured blotches.
            Defaults to 0.01.
        fda_pool_size (int): At most this many images per domain, drawn at
            random, serve as FDA references (bounds memory).
            Defaults to 256.
        jpeg_quality (int): JPEG quality. Defaults to 95.
        save_masks (bool): Also write instance masks. Defaults to False.
        overwrite (bool): Allow a non-empty ``out_dir``: files with this
            generator's names are removed first, others are kept.
            Defaults to False.

    Returns:
        dict: The content of ``meta.json``.
    """
    if isinstance(img_size, int):
        width = height = int(img_size)
    else:
        width, height = (int(v) for v in img_size)
    if width < 32 or height < 32:
        raise ValueError(f'img_size must be at least 32 px, got {img_size}')
    if int(seed) != seed or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed}')
    counts = dict(
        source=num_source,
        target=num_target,
        target_val=num_val,
        source_val=num_val if num_source_val is None else num_source_val)
    for split, n in counts.items():
        if int(n) != n or n < 0:
            raise ValueError(f'number of {split} images must be a '
                             f'non-negative integer, got {n}')
    beta_range = _as_range('fog_beta', fog_beta)
    airlight_range = _as_range('fog_airlight', fog_airlight)
    if beta_range[0] < 0:
        raise ValueError(f'fog_beta must be >= 0, got {fog_beta}')
    if airlight_range[0] < 0 or airlight_range[1] > 1:
        raise ValueError(f'fog_airlight must be in [0, 1], got '
                         f'{fog_airlight}')
    if not 0 <= fog_heterogeneity < 1:
        raise ValueError(f'fog_heterogeneity must be in [0, 1), got '
                         f'{fog_heterogeneity}')
    fda_betas = dict(
        source=source_fake_fda_beta, target=target_fake_fda_beta)
    for split, value in fda_betas.items():
        if not 0 <= value < 0.5:
            raise ValueError(f'{split}_fake_fda_beta must be in [0, 0.5), '
                             f'got {value}')

    _prepare_out_dir(out_dir, overwrite)

    categories = [
        dict(id=i + 1, name=name) for i, name in enumerate(FOG_SHAPES_CLASSES)
    ]
    pools: Dict[str, List[np.ndarray]] = {}
    split_counts = {}
    for split, n in counts.items():
        _, fogged, is_train = _SPLITS[split]
        img_dir = osp.join(out_dir, split, 'images')
        label_dir = osp.join(out_dir, split, 'labels')
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        if save_masks:
            os.makedirs(osp.join(out_dir, split, 'masks'), exist_ok=True)
        pool_ids = set()
        if is_train and n:
            pool_rng = _image_rng(seed, split, 0, _POOL)
            pool_ids = set(
                pool_rng.choice(n, min(n, fda_pool_size),
                                replace=False).tolist())
        pools[split] = []
        images, annotations = [], []
        per_class = [0] * len(FOG_SHAPES_CLASSES)
        for index in range(n):
            stem = f'{split}_{index:06d}'
            scene = render_shapes_scene(
                _image_rng(seed, split, index, _SCENE), (width, height),
                num_objects=num_objects,
                depth_near=depth_near,
                depth_far=depth_far)
            img = scene['img']
            if fogged and fog:
                fog_rng = _image_rng(seed, split, index, _FOG)
                beta = fog_rng.uniform(*beta_range)
                airlight = fog_rng.uniform(*airlight_range)
                beta_map = _fog_beta_map(fog_rng, (height, width), beta,
                                         fog_heterogeneity)
                img = apply_atmospheric_fog(img, scene['depth'], beta_map,
                                            airlight)
            data = _encode_jpg(img, jpeg_quality)
            with open(osp.join(img_dir, stem + '.jpg'), 'wb') as f:
                f.write(data)
            if index in pool_ids:
                pools[split].append(
                    cv2.imdecode(np.frombuffer(data, np.uint8),
                                 cv2.IMREAD_COLOR))
            lines = []
            image_id = index + 1
            images.append(
                dict(
                    id=image_id,
                    file_name=stem + '.jpg',
                    width=width,
                    height=height))
            for k, (label, (x1, y1, x2, y2)) in enumerate(
                    zip(scene['labels'], scene['bboxes'])):
                w, h = float(x2 - x1), float(y2 - y1)
                lines.append(f'{int(label)} {(x1 + x2) / 2 / width:.6f} '
                             f'{(y1 + y2) / 2 / height:.6f} '
                             f'{w / width:.6f} {h / height:.6f}\n')
                per_class[int(label)] += 1
                area = float((scene['instance_map'] == k + 1).sum())
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=int(label) + 1,
                        bbox=[float(x1), float(y1), w, h],
                        area=area,
                        iscrowd=0))
            with open(osp.join(label_dir, stem + '.txt'), 'w') as f:
                f.writelines(lines)
            if save_masks:
                cv2.imwrite(
                    osp.join(out_dir, split, 'masks', stem + '.png'),
                    scene['instance_map'].astype(np.uint8))
        os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
        with open(osp.join(out_dir, 'annotations', f'{split}.json'),
                  'w') as f:
            json.dump(
                dict(
                    images=images,
                    annotations=annotations,
                    categories=categories), f)
        split_counts[split] = dict(
            images=n,
            instances=sum(per_class),
            per_class=dict(zip(FOG_SHAPES_CLASSES, per_class)))

    # fakes: FDA of every training image with a reference of the other domain
    for split, fake in _FAKE_OF.items():
        refs = pools['target' if split == 'source' else 'source']
        n = counts[split]
        fake_dir = osp.join(out_dir, fake, 'images')
        os.makedirs(fake_dir, exist_ok=True)
        for index in range(n):
            stem = f'{split}_{index:06d}.jpg'
            img = cv2.imread(osp.join(out_dir, split, 'images', stem),
                             cv2.IMREAD_COLOR)
            if refs:
                ref = refs[int(
                    _image_rng(seed, split, index, _FDA).integers(len(refs)))]
                img = fda_transfer(img, ref, fda_betas[split])
            with open(osp.join(fake_dir, stem), 'wb') as f:
                f.write(_encode_jpg(img, jpeg_quality))
        split_counts[fake] = dict(images=n)

    meta = dict(
        name='fog_shapes',
        classes=list(FOG_SHAPES_CLASSES),
        seed=seed,
        img_size=[width, height],
        counts=split_counts,
        fog=dict(
            enabled=bool(fog),
            model='I = R * t + A * (1 - t), t = exp(-beta * depth)',
            beta=list(beta_range),
            airlight=list(airlight_range),
            heterogeneity=fog_heterogeneity,
            depth='ground plane: depth_near at the bottom row, depth_far at '
            'and above the horizon; objects at the ground depth of their '
            'centre row',
            depth_near=depth_near,
            depth_far=depth_far),
        fda=dict(source_fake_beta=source_fake_fda_beta,
                 target_fake_beta=target_fake_fda_beta,
                 pool_size=fda_pool_size,
                 source_fake='source with target references',
                 target_fake='target with source references'),
        num_objects=list(num_objects),
        label_format=dict(
            yolo='cls cx cy w h (normalised)',
            coco='bbox [x, y, w, h], category_id = cls + 1'),
        jpeg_quality=jpeg_quality,
        masks=bool(save_masks))
    with open(osp.join(out_dir, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
    return meta
