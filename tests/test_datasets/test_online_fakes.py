"""PairedDataset without fake files: ``fake_pipeline`` makes each fake from
its real image when it is loaded, for the sample and its mosaic partners."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import BaseTransform

from mmssda.datasets import (AtmosphericFog, FDAStyleTransfer,
                             LoadPairedImageFromFile, PairedDataset)
from mmssda.datasets.transforms.fda_style_transfer import fda_transfer

# different sizes and aspect ratios, so that any geometric step that is not
# shared shows in the pixels
SIZES = [(80, 64), (40, 96), (112, 36), (64, 64), (96, 72)]


class _Invert(BaseTransform):
    """A deterministic fake: the inverted image."""

    def transform(self, results):
        results['fake_img'] = 255 - results['img']
        return results


class _MarkerOnBright(BaseTransform):
    """Keep the saturated marker pixels, paint the rest bright gray."""

    def transform(self, results):
        img = results['img']
        marker = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1:2] > 100
        results['fake_img'] = np.where(marker, img, 170).astype(np.uint8)
        return results


class _NoFake(BaseTransform):

    def transform(self, results):
        return results


def _fda(ref):
    # private generator, one reference, fixed beta: a function of the image
    return FDAStyleTransfer(ref_path=[ref], beta=0.05, seed=0)


def _fog():
    return AtmosphericFog(beta=0.02, airlight=0.9, seed=0)


def _write_offline_fakes(data, make, folder):
    """The fakes ``make`` gives, written as lossless files."""
    os.makedirs(folder)
    for name in data['names']:
        real = cv2.imread(osp.join(data['root'], 'images', name))
        fake = make(dict(img=real))['fake_img']
        cv2.imwrite(osp.join(folder, osp.splitext(name)[0] + '.png'), fake)


def test_needs_fake_root_or_fake_pipeline(tmp_path, pair_data,
                                          paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2)
    inner = paired_helpers['inner_cfg']('yolo', data['root'])
    with pytest.raises(ValueError, match='exactly one of `fake_root`.*'
                       '`fake_pipeline`.*FDAStyleTransfer'):
        PairedDataset(dataset=inner, domain='target')
    with pytest.raises(ValueError, match='exactly one of'):
        PairedDataset(dataset=inner, fake_root=data['fake_root'],
                      fake_pipeline=[_Invert()])


def test_fake_pipeline_must_write_a_fake_of_the_real_size(
        tmp_path, pair_data, paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2)
    inner = paired_helpers['inner_cfg']('yolo', data['root'])
    ds = PairedDataset(dataset=inner, fake_pipeline=[_NoFake()],
                       pipeline=[dict(type='LoadPairedImageFromFile')])
    assert ds.get_data_info(0)['fake_img_path'] is None
    with pytest.raises(ValueError, match='no results\\["fake_img"\\]'):
        ds[0]
    # a transform that never saw the dataset cannot make a fake
    with pytest.raises(KeyError, match='fake_pipeline'):
        LoadPairedImageFromFile()(ds.get_data_info(0))


def test_online_fake_is_made_from_the_loaded_real_image(
        tmp_path, pair_data, paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=3, sizes=SIZES[:3])
    ref = osp.join(data['fake_root'], '0000.png')
    ds = PairedDataset(
        dataset=paired_helpers['inner_cfg']('coco', data['root']),
        domain='target',
        fake_pipeline=dict(type='FDAStyleTransfer', ref_path=[ref],
                           beta=0.05),
        pipeline=[dict(type='LoadPairedImageFromFile')])
    assert 'fake_pipeline=' in repr(ds)
    ref_img = cv2.imread(ref)
    for i in range(len(ds)):
        out = ds[i]
        real = cv2.imread(out['img_path'])
        np.testing.assert_array_equal(out['img'], real)
        np.testing.assert_array_equal(out['fake_img'],
                                      fda_transfer(real, ref_img, 0.05))
        assert out['fda_ref_path'] == ref


@pytest.mark.parametrize('make', ['invert', 'fda', 'fog'])
def test_online_fakes_equal_offline_fakes_through_the_train_pipeline(
        make, tmp_path, pair_data, paired_helpers, mmssda_scope):
    """Mosaic (partners made online too), affine, HSV and flip treat an
    online fake exactly as the same fake read from a file."""
    data = pair_data(tmp_path / 'd', num=5, fake='copy', seed=1,
                     sizes=SIZES)
    ref = osp.join(data['root'], 'images', data['names'][2])
    makers = dict(invert=_Invert, fda=lambda: _fda(ref), fog=_fog)
    offline_root = str(tmp_path / 'offline')
    _write_offline_fakes(data, makers[make](), offline_root)
    pipeline = paired_helpers['train_pipeline'](rotate=5.0, shear=2.0)
    inner = paired_helpers['inner_cfg']('yolo', data['root'])
    offline = PairedDataset(dataset=inner, fake_root=offline_root,
                            pipeline=pipeline)
    online = PairedDataset(dataset=inner, fake_pipeline=[makers[make]()],
                           pipeline=pipeline)
    for seed in range(6):
        np.random.seed(seed)
        want = offline[seed % len(offline)]
        np.random.seed(seed)
        got = online[seed % len(online)]
        for stream in ('source_real', 'source_fake'):
            assert torch.equal(got['inputs'][stream],
                               want['inputs'][stream]), (make, seed, stream)
        assert not torch.equal(got['inputs']['source_real'],
                               got['inputs']['source_fake'])
        assert torch.equal(
            got['data_samples']['source_real'].gt_instances.bboxes.tensor,
            want['data_samples']['source_real'].gt_instances.bboxes.tensor)


def _marker_mask(img):
    return cv2.cvtColor(np.ascontiguousarray(img),
                        cv2.COLOR_BGR2HSV)[..., 1] > 100


def test_online_fake_shares_geometry_with_its_real_image(
        tmp_path, pair_data, paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=5, marker=True, real_ext='.png',
                     sizes=SIZES)
    ds = PairedDataset(
        dataset=paired_helpers['inner_cfg']('yolo', data['root']),
        fake_pipeline=[_MarkerOnBright()],
        pipeline=paired_helpers['train_pipeline'](rotate=5.0, shear=2.0))
    flips = set()
    for seed in range(8):
        np.random.seed(seed)
        out = ds[seed % len(ds)]
        real, fake = (out['inputs'][s].permute(1, 2, 0).numpy()
                      for s in ('source_real', 'source_fake'))
        assert not np.array_equal(real, fake)
        m_real, m_fake = _marker_mask(real), _marker_mask(fake)
        assert m_real.sum() > 20, seed
        # the markers coincide, up to a pixel of interpolation at edges
        kernel = np.ones((3, 3), np.uint8)
        for a, b in ((m_real, m_fake), (m_fake, m_real)):
            near_b = cv2.dilate(b.astype(np.uint8), kernel).astype(bool)
            assert (a & ~near_b).sum() == 0, seed
        # the fake's gray background is brighter than the real texture
        # wherever the mosaic placed an image (padding is 114 in both)
        assert fake[~m_fake].mean() > real[~m_real].mean() + 20
        flips.add(out['data_samples']['source_real'].flip)
    assert flips == {True, False}
