"""YOLO txt dataset (``images/`` + ``labels/``) -> COCO json.

The images are read and checked exactly as ``YOLOTxtDataset`` reads them
(same sorted order, same 1-based image ids, same clipping), so the json can
serve as ``ann_file`` of a ``CocoMetric`` evaluating a ``YOLOTxtDataset``.
``file_name`` is relative to the image folder; category ids are 1..K in the
order of ``--classes``.

Example:
    python tools/dataset_converters/yolo_to_coco.py \
        data/foggy_yolo/images/val data/foggy_yolo/annotations/val.json \
        --classes person rider car truck bus train motorcycle bicycle
"""
import argparse
import sys

from mmssda.datasets import YOLOTxtDataset
from mmssda.datasets.coco_conversion import dump_coco, to_coco


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='YOLO txt -> COCO json')
    parser.add_argument('img_dir', help='image folder (a path containing '
                        'images/, labels beside it under labels/)')
    parser.add_argument('out_file', help='output COCO json')
    parser.add_argument('--classes', nargs='+', required=True,
                        help='class names in class-id order')
    parser.add_argument('--allow-missing-label', action='store_true',
                        help='images without label file have no boxes')
    return parser.parse_args(argv)


def convert(args) -> None:
    """Load the folder with YOLOTxtDataset and write the COCO json."""
    dataset = YOLOTxtDataset(
        data_prefix=dict(img=args.img_dir),
        metainfo=dict(classes=tuple(args.classes)),
        allow_missing_label=args.allow_missing_label,
        serialize_data=False,
        test_mode=True)
    coco = to_coco(dataset.data_list, args.classes, args.img_dir)
    print(dump_coco(coco, args.out_file))


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        convert(args)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'yolo_to_coco: error: {e}')


if __name__ == '__main__':
    main()
