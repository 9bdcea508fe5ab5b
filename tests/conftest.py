import json
import os.path as osp

import cv2
import numpy as np
import pytest

from mmssda.utils import register_all_modules

TESTS_DIR = osp.dirname(__file__)
CONFIG_DIR = osp.join(TESTS_DIR, 'data', 'configs')


def pytest_configure(config):
    register_all_modules(init_default_scope=False)


def make_coco_shapes(root, num_images=4, size=96, seed=0):
    """Write ``num_images`` images with 1-3 filled shapes and a COCO file.

    Squares are class 0, discs class 1; the boxes are the shapes' exact
    extents. Returns the COCO dict.
    """
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, 'images')
    ann_dir = osp.join(root, 'annotations')
    for d in (img_dir, ann_dir):
        import os
        os.makedirs(d, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img = np.full((size, size, 3), rng.integers(0, 255), np.uint8)
        for _ in range(rng.integers(1, 4)):
            cls = int(rng.integers(0, 2))
            w = int(rng.integers(12, 32))
            x, y = (int(v) for v in rng.integers(0, size - w, 2))
            color = tuple(int(c) for c in rng.integers(0, 255, 3))
            if cls == 0:
                cv2.rectangle(img, (x, y), (x + w - 1, y + w - 1), color, -1)
            else:
                cv2.circle(img, (x + w // 2, y + w // 2), w // 2, color, -1)
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=i + 1,
                    category_id=cls + 1,
                    bbox=[x, y, w, w],
                    area=w * w,
                    iscrowd=0))
        name = f'{i:04d}.jpg'
        cv2.imwrite(osp.join(img_dir, name), img)
        images.append(dict(id=i + 1, file_name=name, width=size,
                           height=size))
    coco = dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=1, name='square'),
                    dict(id=2, name='disc')])
    with open(osp.join(ann_dir, 'train.json'), 'w') as f:
        json.dump(coco, f)
    return coco


@pytest.fixture
def coco_shapes(tmp_path):
    root = tmp_path / 'shapes'
    make_coco_shapes(str(root))
    return str(root)
