"""StrongView: the student's target-real image gets a photometric strong
view; the teacher's target-fake, the boxes and the geometry stay as they
were."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config

from mmssda.datasets import PairedDataset, StrongView
from mmssda.registry import DATASETS
from tests.test_models.utils import REPO
from tests.training_helpers import make_fog_shapes

ALBU = dict(
    type='SeededAlbu',
    transforms=[
        dict(type='ColorJitter', brightness=0.4, contrast=0.4,
             saturation=0.4, hue=0.1, p=1.0),
        dict(type='ToGray', method='average', p=0.2),
        dict(type='GaussianBlur', sigma_limit=(0.1, 2.0), p=0.5),
        dict(type='Erasing', scale=(0.05, 0.2), fill='random', p=0.7)
    ])
BLOCKS = dict(type='RandomBlockMask', block_size=8, mask_ratio=0.5)
CUTOUT = dict(
    type='RandomApply', prob=1.0,
    transforms=[dict(type='mmdet.CutOut', n_holes=2,
                     cutout_ratio=(0.3, 0.3), fill_in=(1, 2, 3))])


def _results(domain='target', shared=False):
    img = np.random.default_rng(0).integers(4, 256, (48, 64, 3), np.uint8)
    return dict(
        img=img, fake_img=img if shared else img.copy(), domain=domain,
        img_shape=(48, 64, 3), flip=False, flip_direction=None,
        gt_bboxes=HorizontalBoxes(np.array([[2, 3, 20, 30], [30, 1, 60, 40]],
                                           np.float32)),
        gt_bboxes_labels=np.array([1, 0]),
        gt_ignore_flags=np.array([False, True]))


def _assert_same_except_img(out, reference):
    assert set(out) == set(reference)
    for key, value in reference.items():
        if key == 'img':
            continue
        if isinstance(value, HorizontalBoxes):
            assert torch.equal(out[key].tensor, value.tensor), key
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(out[key], value, err_msg=key)
        else:
            assert out[key] == value, key


@pytest.mark.parametrize('transforms', [[ALBU], [BLOCKS], [CUTOUT],
                                        [ALBU, BLOCKS, CUTOUT]])
def test_target_real_changes_photometrically_only(transforms, mmssda_scope):
    view = StrongView(transforms=transforms)
    np.random.seed(0)
    out = view(_results())
    reference = _results()
    # the fake (the teacher's view), boxes, labels and meta are untouched
    _assert_same_except_img(out, reference)
    assert out['img'].shape == reference['img'].shape
    assert out['img'].dtype == np.uint8
    assert not np.array_equal(out['img'], reference['img'])


def test_masking_moves_no_pixel(mmssda_scope):
    np.random.seed(0)
    out = StrongView(transforms=[BLOCKS, CUTOUT])(_results())
    img = _results()['img']
    masked = (out['img'] == 0).all(-1) | (out['img'] == (1, 2, 3)).all(-1)
    assert 0 < masked.mean() < 1
    np.testing.assert_array_equal(out['img'][~masked], img[~masked])


def test_source_pairs_and_empty_view_pass_through(mmssda_scope):
    results = _results(domain='source')
    img = results['img']
    out = StrongView(transforms=[ALBU, BLOCKS])(results)
    assert out['img'] is img
    out = StrongView(transforms=[], domains=('source', ))(_results('source'))
    np.testing.assert_array_equal(out['img'], _results()['img'])
    # domains=('source', 'target') augments both
    np.random.seed(0)
    out = StrongView(transforms=[BLOCKS],
                     domains=('source', 'target'))(_results('source'))
    assert not np.array_equal(out['img'], _results()['img'])


def test_in_place_transforms_cannot_reach_a_shared_fake(mmssda_scope):
    # CutOut writes into results['img']; the fake array must not change
    # even if it is the same array as the real one
    results = _results(shared=True)
    fake = results['fake_img']
    np.random.seed(0)
    out = StrongView(transforms=[CUTOUT])(results)
    assert out['fake_img'] is fake
    np.testing.assert_array_equal(fake, _results()['img'])
    assert not np.array_equal(out['img'], fake)


def test_deterministic_under_numpy_seed(mmssda_scope):
    view = StrongView(transforms=[ALBU, BLOCKS])
    outs = []
    for seed in (7, 7, 8):
        np.random.seed(seed)
        outs.append(view(_results())['img'])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize('transform, changed', [
    (dict(type='mmdet.RandomFlip', prob=1.0), 'flip, flip_direction, '
     'gt_bboxes, homography_matrix'),
    (dict(type='RandomGrayscale', prob=1.0), 'img.shape'),
    (dict(type='mmdet.RandomErasing', n_patches=1, ratio=0.9,
          bbox_erased_thr=0.5), 'gt_bboxes, gt_bboxes_labels, '
     'gt_ignore_flags'),
    (dict(type='SeededAlbu', transforms=[
        dict(type='HorizontalFlip', p=1.0)],
        keymap={'img': 'image', 'gt_bboxes': 'bboxes'},
        bbox_params=dict(type='BboxParams', format='pascal_voc',
                         label_fields=['gt_bboxes_labels'])), 'gt_bboxes'),
])
def test_rejects_transforms_that_change_geometry(transform, changed,
                                                 mmssda_scope):
    view = StrongView(transforms=[BLOCKS, transform])
    np.random.seed(0)
    with pytest.raises(ValueError, match='StrongView') as err:
        view(_results())
    assert f'changed {changed} (' in str(err.value)
    assert type(view.transforms[1]).__name__ in str(err.value)


def test_bad_input_errors(mmssda_scope):
    view = StrongView(transforms=[BLOCKS])
    results = _results()
    del results['domain']
    with pytest.raises(KeyError, match='domain'):
        view(results)
    results = _results()
    del results['fake_img']
    with pytest.raises(KeyError, match='fake_img'):
        view(results)
    with pytest.raises(ValueError, match='domains'):
        StrongView(transforms=[BLOCKS], domains=('target', 'fog'))


def _target_dataset(data, helpers, strong_view):
    pipeline = helpers['train_pipeline']()
    if strong_view is not None:
        pipeline.insert(-1, dict(type='StrongView', transforms=strong_view))
    return PairedDataset(
        dataset=helpers['inner_cfg']('yolo', data['root']),
        fake_root=data['fake_root'], domain='target', pipeline=pipeline)


def test_through_pack_into_target_real_only(tmp_path, pair_data,
                                            paired_helpers, mmssda_scope):
    """The paired pipeline with and without the strong view, same seed: the
    teacher's target_fake and the labels are identical, the student's
    target_real differs from it exactly on the masked blocks."""
    data = pair_data(tmp_path / 'd', num=4, fake='copy')
    weak = _target_dataset(data, paired_helpers, None)
    strong = _target_dataset(data, paired_helpers, [BLOCKS])
    for seed in range(4):
        np.random.seed(seed)
        plain = weak[seed]
        np.random.seed(seed)
        out = strong[seed]
        assert out['inputs']['source_real'] is None
        real, fake = out['inputs']['target_real'], out['inputs'][
            'target_fake']
        assert torch.equal(fake, plain['inputs']['target_fake'])
        assert torch.equal(plain['inputs']['target_real'], fake)  # copy
        assert real.shape == fake.shape
        masked = (real == 0).all(0) & (fake != 0).any(0)
        assert masked.any()
        assert torch.equal(real[:, ~masked], fake[:, ~masked])
        for stream in ('target_real', 'target_fake'):
            sample = out['data_samples'][stream]
            reference = plain['data_samples'][stream]
            assert torch.equal(sample.gt_instances.bboxes.tensor,
                               reference.gt_instances.bboxes.tensor)
            assert torch.equal(sample.gt_instances.labels,
                               reference.gt_instances.labels)
            assert sample.img_shape == reference.img_shape
            assert sample.flip == reference.flip


def test_strong_view_config_augments_target_real_only(tmp_path,
                                                      monkeypatch,
                                                      mmssda_scope):
    """configs/ssda_yolov5n_fog_shapes_strong_view.py against the demo's
    ssda_yolov5n_fog_shapes.py, same seed: the source pipeline is the same,
    the target pair differs in target_real only."""
    make_fog_shapes(tmp_path, num_source=2, num_target=2)
    monkeypatch.chdir(tmp_path)

    def datasets(name):
        cfg = Config.fromfile(osp.join(REPO, 'configs', name))
        return cfg.train_dataloader.dataset.datasets

    base = datasets('ssda_yolov5n_fog_shapes.py')
    strong = datasets('ssda_yolov5n_fog_shapes_strong_view.py')
    assert strong[0] == base[0]
    assert [t.type for t in strong[1].pipeline] == [
        t.type for t in base[1].pipeline
    ][:-1] + ['StrongView', 'PackPairedDetInputs']
    weak_target = DATASETS.build(base[1])
    strong_target = DATASETS.build(strong[1])
    for idx in range(2):
        np.random.seed(idx)
        plain = weak_target[idx]
        np.random.seed(idx)
        out = strong_target[idx]
        assert out['inputs']['target_real'].shape == (3, 192, 192)
        assert torch.equal(out['inputs']['target_fake'],
                           plain['inputs']['target_fake'])
        assert not torch.equal(out['inputs']['target_real'],
                               plain['inputs']['target_real'])
        for stream in ('target_real', 'target_fake'):
            assert torch.equal(
                out['data_samples'][stream].gt_instances.bboxes.tensor,
                plain['data_samples'][stream].gt_instances.bboxes.tensor)
