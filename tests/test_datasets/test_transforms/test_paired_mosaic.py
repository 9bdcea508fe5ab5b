import copy

import numpy as np
import pytest

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


def test_real_mosaic_unchanged_and_fake_uses_same_partners(
        tmp_path, pair_data, paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=5, fake='different', seed=3)
    ds = PairedDataset(dataset=paired_helpers['inner_cfg']('yolo',
                                                           data['root']),
                       fake_root=data['fake_root'])
    load = [TRANSFORMS.build(t) for t in PRE]
    paired = PairedMosaic(img_scale=(32, 32), pre_transform=PRE)
    plain = TRANSFORMS.build(
        dict(type='Mosaic', img_scale=(32, 32), pre_transform=PRE))
    for seed in range(4):
        results = ds.get_data_info(seed)
        for t in load:
            results = t(results)

        def fresh():
            return dict(copy.deepcopy(results), dataset=ds)

        np.random.seed(seed)
        want = plain(fresh())
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
        # fakes are brighter gray (140-180) than reals (40-70) outside
        # the shapes; padding (114) is the same in both
        pad = got['img'] == 114
        assert (got['fake_img'][pad.all(-1)] == 114).all()
        assert got['fake_img'].mean() != got['img'].mean()
        assert got['dataset'] is ds
