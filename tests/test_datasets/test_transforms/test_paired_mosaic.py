import copy

import numpy as np
import pytest
from mmcv.transforms import BaseTransform

from mmssda.datasets import PairedDataset, PairedMosaic
from mmssda.registry import TRANSFORMS

PRE = [dict(type='LoadPairedImageFromFile'),
       dict(type='LoadAnnotations', with_bbox=True)]


def test_pre_transform_must_load_fakes():
    with pytest.raises(ValueError, match='LoadPairedImageFromFile'):
        PairedMosaic(img_scale=(32, 32),
                     pre_transform=[dict(type='LoadImageFromFile')])
    with pytest.raises(ValueError, match='LoadPairedImageFromFile'):
        PairedMosaic(img_scale=(32, 32))


class _FakeAsImage(BaseTransform):
    """Put the fake image in ``img``: a plain ``Mosaic`` through this
    builds what the fake mosaic of a pair must be."""

    def transform(self, results):
        results['img'] = results['fake_img']
        return results


# Different sizes and aspect ratios: every image lands in its mosaic cell
# with its own scale and padding, so other partners, another centre or
# another placement give another fake mosaic.
SIZES = [(80, 64), (40, 96), (112, 36), (64, 64), (96, 72)]


def test_real_mosaic_unchanged_and_fake_uses_same_partners(
        tmp_path, pair_data, paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=5, fake='different', seed=3,
                     sizes=SIZES)
    ds = PairedDataset(dataset=paired_helpers['inner_cfg']('yolo',
                                                           data['root']),
                       fake_root=data['fake_root'])
    load = [TRANSFORMS.build(t) for t in PRE]
    paired = PairedMosaic(img_scale=(32, 32), pre_transform=PRE)
    plain = TRANSFORMS.build(
        dict(type='Mosaic', img_scale=(32, 32), pre_transform=PRE))
    plain_fake = TRANSFORMS.build(
        dict(type='Mosaic', img_scale=(32, 32),
             pre_transform=[*PRE, _FakeAsImage()]))
    for seed in range(8):
        results = ds.get_data_info(seed % len(ds))
        for t in load:
            results = t(results)

        def fresh():
            return dict(copy.deepcopy(results), dataset=ds)

        np.random.seed(seed)
        want = plain(fresh())
        np.random.seed(seed)
        want_fake = plain_fake(_FakeAsImage()(fresh()))
        np.random.seed(seed)
        got = paired(fresh())
        after = np.random.random()
        np.random.seed(seed)
        plain(fresh())
        # same draws consumed as the unpaired mosaic
        assert after == np.random.random()
        np.testing.assert_array_equal(got['img'], want['img'])
        np.testing.assert_allclose(got['gt_bboxes'].tensor,
                                   want['gt_bboxes'].tensor)
        assert got['fake_img'].shape == got['img'].shape == (64, 64, 3)
        # the fake mosaic: the same partners, centre and placement as the
        # real one, made of their fake images
        np.testing.assert_array_equal(got['fake_img'], want_fake['img'])
        pad = (got['img'] == 114).all(-1)
        assert ((got['fake_img'] == 114).all(-1) == pad).all()
        assert 0 < pad.sum() < pad.size
        assert got['fake_img'].mean() != got['img'].mean()
        assert got['dataset'] is ds


def _samples(rng, sizes, masks=False):
    """A sample and its three partners, loaded (no dataset needed)."""
    from mmdet.structures.bbox import HorizontalBoxes
    from mmdet.structures.mask import BitmapMasks
    samples = []
    for h, w in sizes:
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        xy = rng.uniform(0, min(h, w) / 2, (3, 2))
        boxes = np.concatenate([xy, xy + min(h, w) / 3], 1)
        sample = dict(
            img=img, fake_img=255 - img, img_path=f'{h}x{w}.png',
            gt_bboxes=HorizontalBoxes(boxes.astype(np.float32)),
            gt_bboxes_labels=np.arange(3), gt_ignore_flags=np.zeros(3, bool))
        if masks:
            sample['gt_masks'] = BitmapMasks(
                rng.integers(0, 2, (3, h, w), dtype=np.uint8), h, w)
        samples.append(sample)
    return dict(samples[0], mix_results=samples[1:])


@pytest.mark.parametrize('sizes,masks', [
    ([(32, 32), (16, 32), (32, 24), (32, 32)], False),  # fit their cells
    ([(80, 64), (40, 96), (112, 36), (64, 64)], False),
    ([(80, 64), (40, 96), (112, 36), (64, 64)], True),  # two-pass path
])
def test_one_pass_equals_the_mosaic_of_reals_and_of_fakes(
        sizes, masks, mmssda_scope, paired_helpers):
    from mmyolo.datasets.transforms import Mosaic
    paired = PairedMosaic(img_scale=(32, 32), pre_transform=PRE)
    plain = Mosaic(img_scale=(32, 32), pre_transform=PRE)
    rng = np.random.default_rng(0)
    for seed in range(6):
        results = _samples(rng, sizes, masks)
        fakes = copy.deepcopy(results)
        for s in (fakes, *fakes['mix_results']):
            s['img'] = s['fake_img']
        np.random.seed(seed)
        want = plain.mix_img_transform(copy.deepcopy(results))
        np.random.seed(seed)
        want_fake = plain.mix_img_transform(fakes)
        np.random.seed(seed)
        got = paired.mix_img_transform(results)
        paired_helpers['assert_same_pair'](got, want, want_fake['img'])
        assert got['img_shape'] == want['img_shape']
        assert ('gt_masks' in got) == masks


def test_images_that_fit_their_cell_are_not_resized(monkeypatch,
                                                    mmssda_scope):
    import mmcv
    calls = []
    resize = mmcv.imresize
    monkeypatch.setattr(
        mmcv, 'imresize',
        lambda *a, **k: calls.append(a[0].shape) or resize(*a, **k))
    paired = PairedMosaic(img_scale=(32, 32), pre_transform=PRE)
    rng = np.random.default_rng(1)
    paired.mix_img_transform(
        _samples(rng, [(32, 32), (16, 32), (32, 24), (32, 32)]))
    assert calls == []  # cached images at img_scale: pasted as they are
    paired.mix_img_transform(
        _samples(rng, [(64, 64), (16, 32), (32, 24), (32, 32)]))
    assert calls == [(64, 64, 3)] * 2  # the real and the fake image
