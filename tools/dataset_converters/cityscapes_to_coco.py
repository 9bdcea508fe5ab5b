"""Cityscapes + Foggy Cityscapes -> the 8-class City->Foggy DA benchmark.

Writes three COCO json files into ``--out-dir`` (two with ``--no-foggy``):

- ``cityscapes_train.json``: source, Cityscapes train (2975 images), boxes;
  ``file_name`` relative to ``<cityscapes-root>/leftImg8bit/train``.
- ``foggy_cityscapes_train.json``: target, the foggy train images (beta
  0.02 by default) as an image list without boxes (``--target-labels`` adds
  them, for oracle runs); relative to ``<foggy-root>/leftImg8bit_foggy/train``.
  Load it with ``filter_cfg=dict(filter_empty_gt=False)``.
- ``foggy_cityscapes_val.json``: target val (500 images), boxes; relative
  to ``<foggy-root>/leftImg8bit_foggy/val``.

Classes, in SSDA-YOLO's order, which configs/_base_/datasets/city2foggy.py
reads from the same constant
(``mmssda.datasets.coco_conversion.CITYSCAPES_DA_CLASSES``): bus, bicycle,
car, motorcycle, person, rider, train, truck (category ids 1..8). Boxes are
the tight bounds of the gtFine polygons; see
:mod:`mmssda.datasets.coco_conversion` for the exact pixel convention. Only
one beta is used: mixing the three foggy densities (1500 val images) is a
common mistake that gives much lower mAP.

Cityscapes itself as the target (Sim10k -> Cityscapes, KITTI ->
Cityscapes): ``--no-foggy`` writes ``cityscapes_train.json`` and
``cityscapes_val.json`` (500 images, boxes; relative to
``<cityscapes-root>/leftImg8bit/val``) and needs no foggy images.
``--classes`` keeps the named Cityscapes classes only, category ids 1..K in
the order given (``--classes car`` for the car-only benchmark).

Examples:
    python tools/dataset_converters/cityscapes_to_coco.py \
        --cityscapes-root data/cityscapes --foggy-root data/foggy_cityscapes \
        --out-dir data/cityscapes/annotations
    python tools/dataset_converters/cityscapes_to_coco.py \
        --cityscapes-root data/sim10k2city/cityscapes \
        --out-dir data/sim10k2city/annotations --no-foggy --classes car
"""
import argparse
import os.path as osp
import sys

from mmssda.datasets.coco_conversion import (CITYSCAPES_DA_CLASSES,
                                             CITYSCAPES_SPLIT_SIZES,
                                             cityscapes_data_list, dump_coco,
                                             to_coco)

#: The Cityscapes labels with instances (gtFine), the names ``--classes``
#: accepts.
CITYSCAPES_INSTANCE_CLASSES = ('person', 'rider', 'car', 'truck', 'bus',
                               'caravan', 'trailer', 'train', 'motorcycle',
                               'bicycle')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Cityscapes + Foggy Cityscapes to COCO json (8-class '
        'domain adaptation benchmark)')
    parser.add_argument('--cityscapes-root', required=True,
                        help='folder with gtFine/ and leftImg8bit/')
    parser.add_argument('--foggy-root', default=None,
                        help='folder with leftImg8bit_foggy/ (defaults to '
                        '--cityscapes-root)')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--beta', default='0.02',
                        help='fog density of the foggy images to use')
    parser.add_argument('--target-labels', action='store_true',
                        help='also write boxes into the foggy train file')
    parser.add_argument('--no-foggy', action='store_true',
                        help='Cityscapes is the target: write '
                        'cityscapes_train.json and cityscapes_val.json '
                        'from leftImg8bit/ only, no foggy files')
    parser.add_argument('--classes', nargs='+',
                        default=list(CITYSCAPES_DA_CLASSES),
                        metavar='NAME',
                        help='Cityscapes classes to keep, in label order '
                        '(default: the 8 City -> Foggy classes in '
                        'SSDA-YOLO\'s order); e.g. --classes car')
    args = parser.parse_args(argv)
    unknown = [c for c in args.classes if c not in CITYSCAPES_INSTANCE_CLASSES]
    if unknown or len(set(args.classes)) != len(args.classes):
        parser.error(f'--classes {" ".join(args.classes)}: each must be one '
                     f'of the Cityscapes instance classes '
                     f'{", ".join(CITYSCAPES_INSTANCE_CLASSES)}, once'
                     + (f' (unknown: {", ".join(unknown)})' if unknown else
                        ''))
    return args


def convert(args) -> None:
    """Write the json files and print their counts."""
    foggy_root = args.foggy_root or args.cityscapes_root
    foggy_suffix = f'_leftImg8bit_foggy_beta_{args.beta}.png'
    jobs = [
        ('cityscapes_train.json', 'train',
         osp.join(args.cityscapes_root, 'leftImg8bit', 'train'),
         '_leftImg8bit.png', True, True),
    ]
    if args.no_foggy:
        jobs.append(('cityscapes_val.json', 'val',
                     osp.join(args.cityscapes_root, 'leftImg8bit', 'val'),
                     '_leftImg8bit.png', True, True))
    else:
        jobs += [
            ('foggy_cityscapes_train.json', 'train',
             osp.join(foggy_root, 'leftImg8bit_foggy', 'train'),
             foggy_suffix, args.target_labels, False),
            ('foggy_cityscapes_val.json', 'val',
             osp.join(foggy_root, 'leftImg8bit_foggy', 'val'), foggy_suffix,
             True, True),
        ]
    classes = tuple(args.classes)
    for out_name, split, img_root, suffix, with_labels, labelled in jobs:
        gt_root = osp.join(args.cityscapes_root, 'gtFine', split)
        data_list = cityscapes_data_list(
            gt_root, img_root, suffix, classes, with_labels=with_labels)
        coco = to_coco(data_list, classes, img_root)
        print(dump_coco(coco, osp.join(args.out_dir, out_name), labelled))
        expected = CITYSCAPES_SPLIT_SIZES[split]
        if len(data_list) != expected:
            print(f'note: {len(data_list)} {split} images, the benchmark '
                  f'has {expected}')


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        convert(args)
    except ValueError as e:
        sys.exit(f'cityscapes_to_coco: error: {e}')


if __name__ == '__main__':
    main()
