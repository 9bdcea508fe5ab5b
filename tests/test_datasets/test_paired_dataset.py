import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import ConcatDataset
from mmengine.runner import Runner

from mmssda.datasets import PairedDataset
from mmssda.registry import DATASETS, MODELS


def _paired(data, fmt, helpers, **kwargs):
    kwargs.setdefault('fake_root', data['fake_root'])
    return PairedDataset(
        dataset=helpers['inner_cfg'](fmt, data['root']), **kwargs)


def _pairs(ds):
    out = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        out.append((osp.normpath(info['img_path']), info['fake_img_path'],
                    info['domain'],
                    [(inst['bbox_label'], tuple(inst['bbox']))
                     for inst in info['instances']]))
    return out


def test_formats_give_the_same_pairs(tmp_path, pair_data, paired_helpers,
                                     mmssda_scope):
    data = pair_data(tmp_path / 'd', num=3)
    real_root = osp.join(data['root'], 'images')
    results = {
        fmt: _pairs(_paired(data, fmt, paired_helpers, real_root=real_root))
        for fmt in ('yolo', 'coco', 'voc')
    }
    expected = [(osp.join(real_root, name),
                 osp.join(data['fake_root'], name[:-4] + '.png'), 'source',
                 [(c, tuple(map(float, b))) for c, b in boxes])
                for name, boxes in zip(data['names'], data['boxes'])]
    for fmt, pairs in results.items():
        assert [p[:3] for p in pairs] == [e[:3] for e in expected], fmt
        for (*_, got), (*_, want) in zip(pairs, expected):
            assert [c for c, _ in got] == [c for c, _ in want], fmt
            np.testing.assert_allclose([b for _, b in got],
                                       [b for _, b in want], atol=1e-4)


def test_default_real_root_and_info_is_a_copy(tmp_path, pair_data,
                                              paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2)
    ds = _paired(data, 'coco', paired_helpers, domain='target')
    assert osp.normpath(ds.real_root) == osp.join(data['root'], 'images')
    info = ds.get_data_info(1)
    assert info['fake_img_path'] == osp.join(data['fake_root'], '0001.png')
    assert info['domain'] == 'target'
    info['instances'].clear()
    assert ds.get_data_info(1)['instances']
    assert ds.metainfo['classes'] == paired_helpers['classes']
    assert 'domain' not in ds.metainfo


@pytest.mark.parametrize('fmt', ['coco', 'yolo'])
def test_info_copied_once(tmp_path, pair_data, paired_helpers, mmssda_scope,
                          monkeypatch, fmt):
    """mmengine's data sets already hand out a copy of each data info:
    no second deep copy (a hot path of every training sample); an inner
    data set that hands out its own objects still gets one."""
    import mmssda.datasets.paired_dataset as paired_module
    data = pair_data(tmp_path / 'd', num=2)
    ds = _paired(data, fmt, paired_helpers, domain='target')
    ds.full_init()
    calls = []
    deepcopy = paired_module.copy.deepcopy
    monkeypatch.setattr(paired_module.copy, 'deepcopy',
                        lambda x, *a: calls.append(1) or deepcopy(x, *a))
    info = ds.get_data_info(1)
    assert calls == []
    info['instances'].clear()
    assert ds.get_data_info(1)['instances']

    class SharingDataset(type(ds.dataset)):
        """Hands out the same data info object on every call."""
        shared = {}

        def get_data_info(self, idx):
            if idx not in self.shared:
                self.shared[idx] = super().get_data_info(idx)
            return self.shared[idx]

    ds.dataset.__class__ = SharingDataset
    ds._inner_copies = paired_module._returns_copies(ds.dataset)
    info = ds.get_data_info(1)
    assert calls == [1]
    info['instances'].clear()
    assert ds.get_data_info(1)['instances']


def test_missing_fakes_fail_fast(tmp_path, pair_data, paired_helpers,
                                 mmssda_scope):
    data = pair_data(tmp_path / 'd', num=4)
    for stem in ('0001', '0003'):
        os.remove(osp.join(data['fake_root'], stem + '.png'))
    with pytest.raises(ValueError) as err:
        _paired(data, 'yolo', paired_helpers)
    msg = str(err.value)
    assert '2 of 4 real images have no fake' in msg
    assert osp.join(data['fake_root'], '0001') in msg
    assert data['fake_root'] in msg and 'real_root=' in msg
    # other extensions are accepted when listed
    os.rename(osp.join(data['fake_root'], '0000.png'),
              osp.join(data['fake_root'], '0001.bmp'))
    with pytest.raises(ValueError, match=r'2 of 4 .*0000'):
        _paired(data, 'yolo', paired_helpers)
    with pytest.raises(ValueError, match='3 of 4'):
        _paired(data, 'yolo', paired_helpers, fake_suffixes=('.png', ))


def test_bad_fake_image_and_bad_domain(tmp_path, pair_data, paired_helpers,
                                       mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2)
    with open(osp.join(data['fake_root'], '0001.png'), 'wb') as f:
        f.write(b'garbage')
    with pytest.raises(ValueError, match=r'Unreadable image .*fake/0001'):
        _paired(data, 'coco', paired_helpers)
    with pytest.raises(ValueError, match='domain'):
        _paired(data, 'coco', paired_helpers, domain='src')
    with pytest.raises(ValueError, match='fake_root'):
        _paired(data, 'coco', paired_helpers, fake_root='')


def test_empty_and_boxless_source(tmp_path, pair_data, paired_helpers,
                                  mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2)
    inner = paired_helpers['inner_cfg'](
        'coco', data['root'], filter_cfg=dict(filter_empty_gt=False,
                                              min_size=1000))
    with pytest.raises(ValueError, match=r'inner dataset is empty.*'
                       r'annotations/train.json'):
        PairedDataset(dataset=inner, fake_root=data['fake_root'])
    # labels exist but no class matches: a source set without boxes
    inner = paired_helpers['inner_cfg'](
        'voc', data['root'], metainfo=dict(classes=('cat', 'dog')))
    with pytest.raises(ValueError, match='no image of .*VOCDataset.* box'):
        PairedDataset(dataset=inner, fake_root=data['fake_root'],
                      real_root=osp.join(data['root'], 'images'))
    # a target set needs no labels at all
    inner = paired_helpers['inner_cfg']('yolo', data['root'],
                                        with_label=False)
    ds = PairedDataset(dataset=inner, fake_root=data['fake_root'],
                       domain='target')
    assert len(ds) == 2


def test_pipeline_gets_dataset_and_refetches(tmp_path, pair_data,
                                             paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=3)
    seen = []

    def drop_first(results):
        seen.append(results['dataset'])
        return None if results['img_path'].endswith('0000.jpg') else results

    ds = _paired(data, 'yolo', paired_helpers, pipeline=[drop_first])
    out = ds[0]
    assert not out['img_path'].endswith('0000.jpg')
    assert all(d is ds for d in seen)
    ds_test = _paired(data, 'yolo', paired_helpers, pipeline=[drop_first],
                      test_mode=True)
    with pytest.raises(RuntimeError, match='returned None'):
        ds_test[0]


def test_concat_dataset(tmp_path, pair_data, paired_helpers, mmssda_scope):
    src = pair_data(tmp_path / 's', num=3)
    tgt = pair_data(tmp_path / 't', num=2, seed=1)
    helpers = paired_helpers
    cfg = dict(
        type='ConcatDataset',
        datasets=[
            dict(type='PairedDataset', domain='source',
                 fake_root=src['fake_root'],
                 dataset=helpers['inner_cfg']('coco', src['root'])),
            dict(type='PairedDataset', domain='target',
                 fake_root=tgt['fake_root'],
                 dataset=helpers['inner_cfg']('coco', tgt['root']))
        ])
    concat = DATASETS.build(cfg)
    assert isinstance(concat, ConcatDataset) and len(concat) == 5
    assert concat.get_data_info(3)['domain'] == 'target'
    assert concat.get_data_info(3)['fake_img_path'] == osp.join(
        tgt['fake_root'], '0000.png')


def test_train_dataloader_to_four_streams(tmp_path, pair_data,
                                          paired_helpers, mmssda_scope):
    src = pair_data(tmp_path / 's', num=4)
    tgt = pair_data(tmp_path / 't', num=3, seed=1)
    helpers = paired_helpers
    pipeline = helpers['train_pipeline'](img_scale=(32, 32))

    def paired(data, domain, **inner):
        return dict(type='PairedDataset', domain=domain, pipeline=pipeline,
                    fake_root=data['fake_root'],
                    dataset=helpers['inner_cfg']('yolo', data['root'],
                                                 **inner))

    loader = Runner.build_dataloader(
        dict(batch_size=5, num_workers=0,
             sampler=dict(type='MultiDomainSampler', source_per_batch=3,
                          target_per_batch=2),
             collate_fn=dict(type='pseudo_collate'),
             dataset=dict(type='ConcatDataset', datasets=[
                 paired(src, 'source'),
                 paired(tgt, 'target', with_label=False)])),
        seed=0)
    batch = next(iter(loader))
    preprocessor = MODELS.build(
        dict(type='mmdet.MultiBranchDataPreprocessor',
             data_preprocessor=dict(type='mmdet.DetDataPreprocessor',
                                    mean=[0, 0, 0], std=[255, 255, 255],
                                    bgr_to_rgb=True)))
    out = preprocessor(batch, training=True)
    for stream, n in (('source_real', 3), ('source_fake', 3),
                      ('target_real', 2), ('target_fake', 2)):
        assert out['inputs'][stream].shape == (n, 3, 32, 32), stream
        assert out['inputs'][stream].dtype == torch.float32
        assert float(out['inputs'][stream].max()) <= 1.0
        assert len(out['data_samples'][stream]) == n
    for real, fake in zip(out['data_samples']['source_real'],
                          out['data_samples']['source_fake']):
        assert real.metainfo['domain'] == 'source'
        assert fake.img_path == real.fake_img_path
        assert torch.equal(real.gt_instances.bboxes,
                           fake.gt_instances.bboxes)
    assert sum(len(s.gt_instances)
               for s in out['data_samples']['source_real']) > 0
    assert all(len(s.gt_instances) == 0
               for s in out['data_samples']['target_real'])
    # the four-stream batch of a whole "epoch" has the SSDA-YOLO length
    assert len(loader) == loader.sampler.epoch_length == 2


def test_inner_dataset_wrapper(tmp_path, pair_data, paired_helpers,
                               mmssda_scope):
    """An inner ConcatDataset (e.g. VOC 2007 + 2012) gets the empty pipeline
    and the invalid policy on its children; an empty child is named."""
    a = pair_data(tmp_path / 'a', num=2, seed=0)
    b = pair_data(tmp_path / 'b', num=3, seed=1)
    # the fakes mirror the real paths under one root: fakes/a/images/...
    for name, data in (('a', a), ('b', b)):
        os.makedirs(tmp_path / 'fakes' / name)
        os.rename(data['fake_root'], tmp_path / 'fakes' / name / 'images')
    inner = paired_helpers['inner_cfg']
    cfg = dict(
        dataset=dict(type='ConcatDataset', datasets=[
            inner('yolo', a['root']), inner('yolo', b['root'])]),
        real_root=str(tmp_path), fake_root=str(tmp_path / 'fakes'),
        invalid_policy='skip')
    ds = PairedDataset(**cfg)
    assert len(ds) == 5
    assert ds.get_data_info(4)['fake_img_path'] == str(
        tmp_path / 'fakes' / 'b' / 'images' / '0002.png')
    children = ds.dataset.datasets
    assert [c.pipeline.transforms for c in children] == [[], []]
    assert [c.invalid_policy for c in children] == ['skip', 'skip']
    # VOCDataset's year (metainfo['dataset_type']) is not compared
    assert 'dataset_type' in ds.dataset.ignore_keys

    # a child without images
    os.makedirs(tmp_path / 'none' / 'annotations')
    with open(tmp_path / 'none' / 'annotations' / 'train.json', 'w') as f:
        json.dump(dict(images=[], annotations=[], categories=[
            dict(id=1, name='square')]), f)
    cfg['dataset']['datasets'] = [
        inner('coco', a['root']), inner('coco', str(tmp_path / 'none'))]
    with pytest.raises(ValueError,
                       match=r'empty.*\(empty: YOLOv5CocoDataset.*none'):
        PairedDataset(**cfg)
