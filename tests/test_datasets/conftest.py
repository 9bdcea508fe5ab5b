"""Generated paired data for the dataset, transform and sampler tests."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

CLASSES = ('square', 'disc')


def _write_voc_xml(path, name, width, height, boxes):
    objs = ''.join(
        f'<object><name>{CLASSES[c]}</name><difficult>0</difficult>'
        f'<bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin>'
        f'<xmax>{x2 + 1}</xmax><ymax>{y2 + 1}</ymax></bndbox></object>'
        for c, (x1, y1, x2, y2) in boxes)
    with open(path, 'w') as f:
        f.write(f'<annotation><filename>{name}</filename><size><width>'
                f'{width}</width><height>{height}</height><depth>3</depth>'
                f'</size>{objs}</annotation>')


def _draw_sample(rng, width, height, marker):
    """A real image and its boxes [(cls, (x1, y1, x2, y2))]: either one red
    marker square on gray texture, or 1-3 coloured shapes."""
    boxes = []
    if marker:
        img = (40 + rng.integers(0, 30, (height, width, 1))).repeat(3, 2)
        img = img.astype(np.uint8)
        s = int(rng.integers(10, 16))
        x, y = int(rng.integers(4, width - s - 4)), int(
            rng.integers(4, height - s - 4))
        img[y:y + s, x:x + s] = (0, 0, 255)
        return img, [(0, (x, y, x + s, y + s))]
    img = np.full((height, width, 3), rng.integers(0, 255, 3), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        cls, s = int(rng.integers(0, 2)), int(rng.integers(8, 20))
        x = int(rng.integers(0, width - s))
        y = int(rng.integers(0, height - s))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(img, (x, y), (x + s - 1, y + s - 1), color, -1)
        boxes.append((cls, (x, y, x + s, y + s)))
    return img, boxes


def _fake_of(real, boxes, mode, rng):
    """The fake image: a copy, or a different background with the same
    marker pixels."""
    if mode == 'copy':
        return real.copy()
    fake = (140 + rng.integers(0, 40, real.shape[:2] + (1, ))).repeat(3, 2)
    fake = fake.astype(np.uint8)
    for _, (x1, y1, x2, y2) in boxes:
        fake[y1:y2, x1:x2] = real[y1:y2, x1:x2]
    return fake


def make_pair_data(root,
                   num=4,
                   size=(80, 64),
                   fake='copy',
                   marker=False,
                   real_ext='.jpg',
                   seed=0,
                   sizes=None):
    """Write ``num`` real images with YOLO txt, COCO json and VOC xml labels
    plus fakes (``<root>/fake/<name>.png``).

    Layout: ``images/NNNN<real_ext>``, ``labels/NNNN.txt``,
    ``annotations/train.json``, ``Annotations/NNNN.xml``,
    ``ImageSets/Main/train.txt``. Boxes are continuous pixel xyxy. Images
    are ``size`` (width, height), or ``sizes[i]`` for image ``i``.

    Returns:
        dict: ``root``, ``fake_root``, ``names`` and ``boxes`` per image.
    """
    rng = np.random.default_rng(seed)
    sizes = list(sizes) if sizes is not None else [size] * num
    assert len(sizes) == num, 'one (width, height) per image'
    for d in ('images', 'labels', 'annotations', 'Annotations',
              'ImageSets/Main', 'fake'):
        os.makedirs(osp.join(root, d), exist_ok=True)
    coco = dict(images=[], annotations=[],
                categories=[dict(id=i + 1, name=n)
                            for i, n in enumerate(CLASSES)])
    names, all_boxes = [], []
    for i in range(num):
        stem = f'{i:04d}'
        width, height = sizes[i]
        real, boxes = _draw_sample(rng, width, height, marker)
        real_path = osp.join(root, 'images', stem + real_ext)
        cv2.imwrite(real_path, real)
        decoded = cv2.imread(real_path)
        cv2.imwrite(
            osp.join(root, 'fake', stem + '.png'),
            _fake_of(decoded, boxes, fake, rng))
        with open(osp.join(root, 'labels', stem + '.txt'), 'w') as f:
            for c, (x1, y1, x2, y2) in boxes:
                f.write(f'{c} {(x1 + x2) / 2 / width:.8f} '
                        f'{(y1 + y2) / 2 / height:.8f} '
                        f'{(x2 - x1) / width:.8f} {(y2 - y1) / height:.8f}\n')
        coco['images'].append(
            dict(id=i + 1, file_name=stem + real_ext, width=width,
                 height=height))
        for c, (x1, y1, x2, y2) in boxes:
            coco['annotations'].append(
                dict(id=len(coco['annotations']) + 1, image_id=i + 1,
                     category_id=c + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                     area=(x2 - x1) * (y2 - y1), iscrowd=0))
        _write_voc_xml(
            osp.join(root, 'Annotations', stem + '.xml'), stem + real_ext,
            width, height, boxes)
        names.append(stem + real_ext)
        all_boxes.append(boxes)
    with open(osp.join(root, 'annotations', 'train.json'), 'w') as f:
        json.dump(coco, f)
    with open(osp.join(root, 'ImageSets', 'Main', 'train.txt'), 'w') as f:
        f.write('\n'.join(n.rsplit('.', 1)[0] for n in names) + '\n')
    return dict(root=str(root), fake_root=osp.join(str(root), 'fake'),
                names=names, boxes=all_boxes)


def inner_cfg(fmt, root, **kwargs):
    """Inner dataset config of format ``'yolo'``, ``'coco'`` or ``'voc'``."""
    meta = dict(classes=CLASSES)
    if fmt == 'yolo':
        cfg = dict(type='YOLOTxtDataset', data_root=root,
                   data_prefix=dict(img='images/'), metainfo=meta)
    elif fmt == 'coco':
        cfg = dict(type='YOLOv5CocoDataset', data_root=root,
                   ann_file='annotations/train.json',
                   data_prefix=dict(img='images/'), metainfo=meta,
                   filter_cfg=dict(filter_empty_gt=False, min_size=0))
    else:
        cfg = dict(type='mmdet.VOCDataset', data_root=root,
                   ann_file='ImageSets/Main/train.txt',
                   data_prefix=dict(sub_data_root=''), img_subdir='images',
                   metainfo=meta)
    cfg.update(kwargs)
    return cfg


def train_pipeline(img_scale=(64, 64), rotate=0.0, shear=0.0):
    """The paired YOLOv5 train pipeline (SSDA-YOLO hyp.scratch)."""
    pre = [dict(type='LoadPairedImageFromFile'),
           dict(type='LoadAnnotations', with_bbox=True)]
    return [
        *pre,
        dict(type='PairedMosaic', img_scale=img_scale, pad_val=114.0,
             pre_transform=pre),
        dict(type='PairedTransform', transforms=[
            dict(type='YOLOv5RandomAffine', max_rotate_degree=rotate,
                 max_shear_degree=shear, scaling_ratio_range=(0.5, 1.5),
                 border=(-img_scale[0] // 2, -img_scale[1] // 2),
                 border_val=(114, 114, 114))]),
        dict(type='PairedYOLOv5HSVRandomAug'),
        dict(type='PairedTransform',
             transforms=[dict(type='mmdet.RandomFlip', prob=0.5)]),
        dict(type='PackPairedDetInputs'),
    ]


def assert_same_pair(got, want_real, want_fake_img):
    """``got`` (paired results) holds ``want_real``'s image, boxes and
    labels, and ``want_fake_img`` as its fake image."""
    np.testing.assert_array_equal(got['img'], want_real['img'])
    np.testing.assert_array_equal(got['fake_img'], want_fake_img)
    np.testing.assert_allclose(got['gt_bboxes'].tensor,
                               want_real['gt_bboxes'].tensor)
    np.testing.assert_array_equal(got['gt_bboxes_labels'],
                                  want_real['gt_bboxes_labels'])


@pytest.fixture
def mmssda_scope():
    with DefaultScope.overwrite_default_scope('mmssda'):
        yield


@pytest.fixture
def pair_data():
    return make_pair_data


@pytest.fixture
def paired_helpers():
    return dict(inner_cfg=inner_cfg, train_pipeline=train_pipeline,
                classes=CLASSES, assert_same_pair=assert_same_pair)
