"""Conversion of detection annotations to COCO json, shared by the tools in
``tools/dataset_converters/``.

Box convention of the Cityscapes conversion: gtFine polygon vertices are
integer pixel indices of the object boundary. The box is the tight bound of
the vertices *as pixels*: in continuous image coordinates (pixel ``i`` spans
``[i, i + 1)``), ``x1 = min(x)``, ``y1 = min(y)``, ``x2 = max(x) + 1``,
``y2 = max(y) + 1`` (exclusive), clipped to ``[0, W] x [0, H]``, written as
COCO ``[x1, y1, x2 - x1, y2 - y1]``. So a one-pixel object has ``w = h = 1``.
(Some DA codebases use ``max(x) - min(x)`` as the width, i.e. one pixel
less; others take boxes from ``gtFine_instanceIds.png``.) Group polygons
(``cargroup``, ``persongroup``, ...) are not instances and are skipped.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

#: The 8 classes of the City -> Foggy benchmark in SSDA-YOLO's order. The
#: converter writes the json categories in this order and
#: configs/_base_/datasets/city2foggy.py reads the same tuple: mmdet numbers
#: labels in the json's category order, so both must agree.
CITYSCAPES_DA_CLASSES = ('bus', 'bicycle', 'car', 'motorcycle', 'person',
                         'rider', 'train', 'truck')
CITYSCAPES_SPLIT_SIZES = dict(train=2975, val=500)
_POLYGON_SUFFIX = '_gtFine_polygons.json'


def polygon_to_box(polygon: Sequence[Sequence[float]], width: int,
                   height: int) -> Optional[List[float]]:
    """Tight pixel box ``[x1, y1, x2, y2]`` (x2, y2 exclusive) of a polygon.

    Args:
        polygon (Sequence[Sequence[float]]): ``[[x, y], ...]`` vertices.
        width (int): Image width W.
        height (int): Image height H.

    Returns:
        list[float] | None: The box clipped to the image, or None if it has
        no area inside the image.
    """
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    x1, y1 = max(min(xs), 0), max(min(ys), 0)
    x2, y2 = min(max(xs) + 1, width), min(max(ys) + 1, height)
    if x2 <= x1 or y2 <= y1:
        return None
    return [float(x1), float(y1), float(x2), float(y2)]


def cityscapes_data_list(gt_root: str,
                         img_root: str,
                         img_suffix: str,
                         classes: Sequence[str] = CITYSCAPES_DA_CLASSES,
                         with_labels: bool = True) -> List[dict]:
    """Data infos of one Cityscapes split from its gtFine polygon files.

    Args:
        gt_root (str): ``gtFine/<split>`` folder (``<city>/*_polygons.json``).
        img_root (str): Image folder of the split with the same ``<city>/``
            layout (``leftImg8bit/<split>`` or ``leftImg8bit_foggy/<split>``).
        img_suffix (str): Image name suffix replacing
            ``_gtFine_polygons.json``, e.g. ``'_leftImg8bit.png'`` or
            ``'_leftImg8bit_foggy_beta_0.02.png'``.
        classes (Sequence[str]): Kept classes; the label is the position.
        with_labels (bool): Parse the boxes; False gives an image list.

    Returns:
        list[dict]: Infos with ``img_path``, ``img_id`` (1-based, sorted by
        path), ``width``, ``height`` and ``instances`` (``bbox`` xyxy,
        ``bbox_label``).
    """
    gt_files = sorted(
        glob.glob(osp.join(gt_root, '*', '*' + _POLYGON_SUFFIX)))
    label_of = {name: i for i, name in enumerate(classes)}
    data_list, missing = [], []
    for i, gt_file in enumerate(gt_files):
        rel = osp.relpath(gt_file, gt_root)[:-len(_POLYGON_SUFFIX)]
        img_path = osp.join(img_root, rel + img_suffix)
        if not osp.isfile(img_path):
            missing.append(img_path)
            continue
        with open(gt_file) as f:
            ann = json.load(f)
        width, height = ann['imgWidth'], ann['imgHeight']
        instances = []
        for obj in ann['objects'] if with_labels else []:
            if obj['label'] not in label_of or obj.get('deleted'):
                continue
            box = polygon_to_box(obj['polygon'], width, height)
            if box is not None:
                instances.append(
                    dict(bbox=box, bbox_label=label_of[obj['label']]))
        data_list.append(
            dict(
                img_path=img_path,
                img_id=i + 1,
                width=width,
                height=height,
                instances=instances))
    if missing:
        raise ValueError(
            f'{len(missing)} images of the annotations in {gt_root} are '
            f'missing, e.g. {missing[:3]} (wrong root, or a foggy beta '
            'other than the one downloaded?).')
    return data_list


def to_coco(data_list: List[dict], classes: Sequence[str],
            img_root: str) -> Dict[str, list]:
    """COCO dict from data infos (``instances`` with pixel xyxy ``bbox``).

    Args:
        data_list (list[dict]): Infos as ``YOLOTxtDataset`` produces them.
        classes (Sequence[str]): Class names; category id = label + 1.
        img_root (str): ``file_name`` is the image path relative to it.

    Returns:
        dict: ``images``, ``annotations`` and ``categories``.
    """
    images, annotations = [], []
    for info in data_list:
        images.append(
            dict(
                id=info['img_id'],
                file_name=osp.relpath(info['img_path'], img_root),
                width=info['width'],
                height=info['height']))
        for inst in info['instances']:
            x1, y1, x2, y2 = inst['bbox']
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=info['img_id'],
                    category_id=inst['bbox_label'] + 1,
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1),
                    iscrowd=0))
    categories = [dict(id=i + 1, name=n) for i, n in enumerate(classes)]
    return dict(images=images, annotations=annotations, categories=categories)


def dump_coco(coco: dict, out_file: str, labelled: bool = True) -> str:
    """Write ``coco`` to ``out_file`` after refusing empty output.

    Args:
        coco (dict): COCO dict.
        out_file (str): Output json path (folders are created).
        labelled (bool): Whether annotations are expected; an unlabelled
            image list may have none.

    Returns:
        str: A one-line count summary (images, boxes, boxes per class).

    Raises:
        ValueError: No images, or no boxes although ``labelled``.
    """
    num_images, num_boxes = len(coco['images']), len(coco['annotations'])
    if num_images == 0 or (labelled and num_boxes == 0):
        raise ValueError(
            f'refusing to write {out_file}: {num_images} images and '
            f'{num_boxes} boxes (check the input paths and class names).')
    per_class = {c['name']: 0 for c in coco['categories']}
    names = {c['id']: c['name'] for c in coco['categories']}
    for ann in coco['annotations']:
        per_class[names[ann['category_id']]] += 1
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with open(out_file, 'w') as f:
        json.dump(coco, f)
    return (f'{out_file}: {num_images} images, {num_boxes} boxes '
            f'{per_class}')
