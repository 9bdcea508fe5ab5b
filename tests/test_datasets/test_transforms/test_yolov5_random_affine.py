import copy

import cv2
import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import PolygonMasks
from mmyolo.datasets.transforms import \
    YOLOv5RandomAffine as MMYOLOYOLOv5RandomAffine

from mmssda.datasets.transforms import YOLOv5RandomAffine
from mmssda.registry import TRANSFORMS

CFGS = [
    # the recipe's: scale and translation only
    dict(max_rotate_degree=0.0, max_shear_degree=0.0,
         scaling_ratio_range=(0.5, 1.5), border=(-32, -32),
         border_val=(114, 114, 114)),
    # rotation and shear too
    dict(max_rotate_degree=15.0, max_shear_degree=5.0,
         scaling_ratio_range=(0.3, 2.0), border=(-24, -32)),
]


def _results(rng, num_boxes=4):
    img = cv2.GaussianBlur(
        rng.integers(0, 255, (128, 160, 3), dtype=np.uint8), (5, 5), 1.5)
    xy = rng.uniform(0, 100, (num_boxes, 2))
    wh = rng.uniform(4, 60, (num_boxes, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    return dict(
        img=img,
        img_shape=img.shape[:2],
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.arange(num_boxes),
        gt_ignore_flags=np.zeros(num_boxes, bool))


def _pair(cfg, results, seed):
    out = []
    for cls in (MMYOLOYOLOv5RandomAffine, YOLOv5RandomAffine):
        np.random.seed(seed)
        out.append(cls(**cfg)(copy.deepcopy(results)))
    return out


def test_registered_under_the_parents_name():
    assert type(TRANSFORMS.build(dict(type='YOLOv5RandomAffine'))) is \
        YOLOv5RandomAffine
    assert type(TRANSFORMS.build(
        dict(type='mmyolo.YOLOv5RandomAffine'))) is MMYOLOYOLOv5RandomAffine


@pytest.mark.parametrize('cfg', CFGS)
@pytest.mark.parametrize('num_boxes', [0, 1, 6])
def test_same_results_as_the_parent(cfg, num_boxes):
    rng = np.random.default_rng(num_boxes)
    kept = 0
    for seed in range(8):
        want, got = _pair(cfg, _results(rng, num_boxes), seed)
        assert got['img'].shape == want['img'].shape
        assert got['img_shape'] == want['img_shape']
        # bilinear rounding: a grey level or two apart, in few pixels
        diff = np.abs(got['img'].astype(int) - want['img'].astype(int))
        assert diff.max() <= 2
        assert (diff > 0).mean() < 0.1
        np.testing.assert_allclose(got['gt_bboxes'].tensor,
                                   want['gt_bboxes'].tensor)
        np.testing.assert_array_equal(got['gt_bboxes_labels'],
                                      want['gt_bboxes_labels'])
        np.testing.assert_array_equal(got['gt_ignore_flags'],
                                      want['gt_ignore_flags'])
        kept += len(got['gt_bboxes'])
    if num_boxes:
        assert 0 < kept < 8 * num_boxes  # boxes kept and boxes filtered


def test_warps_affine_matrices_with_warp_affine(monkeypatch):
    calls = []

    def no_perspective(*args, **kwargs):
        calls.append(args)
        raise AssertionError('warpPerspective called for an affine matrix')

    monkeypatch.setattr(cv2, 'warpPerspective', no_perspective)
    np.random.seed(0)
    out = YOLOv5RandomAffine(**CFGS[1])(_results(np.random.default_rng(0)))
    assert out['img'].shape == (128 - 64, 160 - 48, 3)
    assert not calls


def test_perspective_matrix_and_masks_take_the_parents_path():
    rng = np.random.default_rng(1)
    # subclasses whose draw has a perspective term
    perspective = np.array([[1, 0, 0], [0, 1, 0], [1e-4, 0, 1]], np.float32)

    def with_perspective(cls):

        class WithPerspective(cls):

            def _get_random_homography_matrix(self, height, width):
                matrix, ratio = super()._get_random_homography_matrix(
                    height, width)
                return perspective @ matrix, ratio

        return WithPerspective

    Perspective = with_perspective(YOLOv5RandomAffine)
    ParentPerspective = with_perspective(MMYOLOYOLOv5RandomAffine)
    results = _results(rng)
    np.random.seed(3)
    want = ParentPerspective(**CFGS[1])(copy.deepcopy(results))
    np.random.seed(3)
    got = Perspective(**CFGS[1])(copy.deepcopy(results))
    np.testing.assert_array_equal(got['img'], want['img'])
    np.testing.assert_allclose(got['gt_bboxes'].tensor,
                               want['gt_bboxes'].tensor)

    # with masks: the parent's mask-refined boxes
    results = _results(rng, 2)
    results['gt_masks'] = PolygonMasks(
        [[np.array([10, 10, 40, 10, 40, 40, 10, 40], np.float32)],
         [np.array([60, 50, 90, 50, 75, 90], np.float32)]], 128, 160)
    want, got = _pair(CFGS[1], results, 5)
    np.testing.assert_array_equal(got['img'], want['img'])
    np.testing.assert_allclose(got['gt_bboxes'].tensor,
                               want['gt_bboxes'].tensor)
    assert len(got['gt_masks']) == len(want['gt_masks'])
