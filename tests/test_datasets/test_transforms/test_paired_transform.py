import copy

import numpy as np
import pytest
from mmdet.structures.bbox import HorizontalBoxes

from mmssda.datasets import PairedTransform
from mmssda.registry import TRANSFORMS

AFFINE = dict(type='YOLOv5RandomAffine', max_rotate_degree=10.0,
              scaling_ratio_range=(0.5, 1.5), border=(-8, -8))


def _results(rng):
    img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    return dict(
        img=img, fake_img=255 - img, img_shape=(40, 48), ori_shape=(40, 48),
        gt_bboxes=HorizontalBoxes(np.array([[5., 5., 30., 25.]], np.float32)),
        gt_bboxes_labels=np.array([1]), gt_ignore_flags=np.array([False]))


@pytest.mark.parametrize('cfg', [
    dict(type='Mosaic', pre_transform=[dict(type='LoadImageFromFile')]),
    dict(type='YOLOv5HSVRandomAug'),
    dict(type='YOLOv5MixUp'),
    dict(type='PairedYOLOv5HSVRandomAug'),
    dict(type='PairedTransform', transforms=[]),
])
def test_unpairable_transforms_are_refused(cfg):
    with pytest.raises(ValueError, match='cannot share the random draws'):
        PairedTransform(transforms=[cfg])


@pytest.mark.parametrize('cfg', [AFFINE, dict(type='mmdet.RandomFlip',
                                              prob=0.5)])
def test_same_draws_and_boxes_once(cfg, paired_helpers):
    rng = np.random.default_rng(0)
    for seed in range(6):
        results = _results(rng)
        plain = TRANSFORMS.build(cfg)
        np.random.seed(seed)
        want_real = plain(copy.deepcopy(results))
        np.random.seed(seed)
        want_fake = plain(dict(copy.deepcopy(results),
                               img=results['fake_img']))
        np.random.seed(seed)
        got = PairedTransform(transforms=[cfg])(results)
        paired_helpers['assert_same_pair'](got, want_real, want_fake['img'])


def test_needs_fake_and_propagates_none():
    t = PairedTransform(transforms=[dict(type='mmdet.RandomFlip', prob=1.)])
    results = _results(np.random.default_rng(0))
    del results['fake_img']
    with pytest.raises(KeyError, match='LoadPairedImageFromFile'):
        t(results)
    t = PairedTransform(transforms=[lambda r: None])
    assert t(_results(np.random.default_rng(0))) is None


@pytest.mark.parametrize('cfg', [AFFINE, dict(type='mmdet.RandomFlip',
                                              prob=0.5)])
def test_same_draws_with_two_instances(cfg):
    # the source and the target pipeline each hold a PairedTransform with
    # its own instance of the transform class; mmcv's cache_random_params
    # shared the cache between the instances, so after a few alternating
    # samples one pipeline drew independently for the real and the fake
    paired = [PairedTransform(transforms=[cfg]) for _ in range(2)]
    rng = np.random.default_rng(0)
    np.random.seed(0)
    for _ in range(4):
        for t in paired:
            results = _results(rng)
            results['fake_img'] = results['img'].copy()
            got = t(results)
            np.testing.assert_array_equal(got['img'], got['fake_img'])
    # the transforms are left as built: no per-instance method remains
    for t in paired:
        assert not {'_get_random_homography_matrix', '_choose_direction'} & \
            set(vars(t.transforms[0]))


def test_fake_pass_sees_no_raw_annotations():
    # the raw `instances` stay with the real results, untouched; the fake
    # pass gets neither them nor the real boxes (deep-copying them for every
    # sample was the fake view's main cost)
    seen = []

    def record(results):
        seen.append(dict(results))
        return results

    instances = [dict(bbox=[5., 5., 30., 25.], bbox_label=1, ignore_flag=0)]
    results = dict(_results(np.random.default_rng(0)),
                   instances=copy.deepcopy(instances))
    got = PairedTransform(transforms=[record])(results)
    real, fake = seen
    assert real['instances'] == instances
    assert 'instances' not in fake and len(fake['gt_bboxes']) == 0
    assert got['instances'] == instances
    np.testing.assert_array_equal(fake['img'], got['fake_img'])
