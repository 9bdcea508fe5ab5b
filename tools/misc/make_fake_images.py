"""Write training-free fake images (FDA or synthetic fog) for mmssda.

Each image under ``--src-dir`` is translated and written under ``--out-dir``
with the same relative path, which is what mmssda's ``PairedDataset`` expects
of a fake root.

Examples:
    # source (clear) -> target style, with FDA and target references
    python tools/misc/make_fake_images.py --src-dir data/city/leftImg8bit \
        --ref-dir data/foggy_city/leftImg8bit --out-dir data/city_fake \
        --method fda --beta 0.01 --seed 0
    # clear -> fog with the scattering model and a ground-plane depth
    python tools/misc/make_fake_images.py --src-dir data/city/leftImg8bit \
        --out-dir data/city_fog --method fog --beta 0.02
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np

from mmssda.datasets.transforms.atmospheric_fog import (apply_atmospheric_fog,
                                                        ground_plane_depth)
from mmssda.datasets.transforms.fda_style_transfer import (IMG_EXTENSIONS,
                                                           fda_transfer,
                                                           list_images)
from mmssda.utils.file_scan import list_files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Translate a folder of images with FDA or fog')
    parser.add_argument('--src-dir', required=True,
                        help='images to translate (searched recursively)')
    parser.add_argument('--ref-dir',
                        help='reference images of the other domain (fda)')
    parser.add_argument('--out-dir', required=True,
                        help='where the translated images go, same '
                        'relative paths')
    parser.add_argument('--method', choices=['fda', 'fog'], default='fda')
    parser.add_argument('--beta', type=float, default=None,
                        help='fda: window half-size fraction (default '
                        '0.01); fog: attenuation coefficient (default 0.02)')
    parser.add_argument('--airlight', type=float, default=0.85,
                        help='fog: grey airlight in [0, 1]')
    parser.add_argument('--horizon', type=float, default=0.4,
                        help='fog: horizon row of the depth, fraction of H')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the reference choice (fda)')
    parser.add_argument('--jpeg-quality', type=int, default=95)
    parser.add_argument('--force', action='store_true',
                        help='overwrite existing output files')
    return parser.parse_args(argv)


def _read(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f'error: cannot read image {path!r}')
    return img


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(args.src_dir):
        raise SystemExit(f'error: --src-dir {args.src_dir!r} is not a folder')
    rel_paths = [
        osp.relpath(p, args.src_dir) for p in list_files(
            args.src_dir, IMG_EXTENSIONS, owner='make_fake_images --src-dir')
    ]
    if not rel_paths:
        raise SystemExit(f'error: no images ({", ".join(IMG_EXTENSIONS)}) '
                         f'under --src-dir {args.src_dir!r}')
    if osp.abspath(args.out_dir) == osp.abspath(args.src_dir):
        raise SystemExit('error: --out-dir must differ from --src-dir')
    existing = [
        p for p in rel_paths if osp.exists(osp.join(args.out_dir, p))
    ]
    if existing and not args.force:
        raise SystemExit(
            f'error: {len(existing)} output file(s) exist, e.g. '
            f'{osp.join(args.out_dir, existing[0])!r}; pass --force to '
            'overwrite them')

    if args.method == 'fda':
        if not args.ref_dir:
            raise SystemExit('error: --method fda needs --ref-dir')
        beta = 0.01 if args.beta is None else args.beta
        try:
            refs = list_images(args.ref_dir)
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(f'error: --ref-dir: {exc}')
        rng = np.random.default_rng(args.seed)
    else:
        beta = 0.02 if args.beta is None else args.beta

    for rel in rel_paths:
        img = _read(osp.join(args.src_dir, rel))
        try:
            if args.method == 'fda':
                ref = _read(refs[int(rng.integers(len(refs)))])
                out = fda_transfer(img, ref, beta)
            else:
                h, w = img.shape[:2]
                out = apply_atmospheric_fog(
                    img, ground_plane_depth(h, w, args.horizon), beta,
                    args.airlight)
        except ValueError as exc:
            raise SystemExit(f'error: {exc}')
        dst = osp.join(args.out_dir, rel)
        os.makedirs(osp.dirname(dst), exist_ok=True)
        params = [cv2.IMWRITE_JPEG_QUALITY, args.jpeg_quality] \
            if dst.lower().endswith(('.jpg', '.jpeg')) else []
        if not cv2.imwrite(dst, out, params):
            raise SystemExit(f'error: cannot write {dst!r}')
    print(f'{args.method}: wrote {len(rel_paths)} image(s) from '
          f'{args.src_dir} to {args.out_dir} (beta={beta}'
          + (f', {len(refs)} references' if args.method == 'fda' else '') +
          (f', {len(existing)} overwritten' if existing else '') + ')')
    return 0


if __name__ == '__main__':
    main()
