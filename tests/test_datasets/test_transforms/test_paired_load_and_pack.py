import warnings

import cv2
import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmdet.structures.bbox import HorizontalBoxes

from mmssda.datasets import LoadPairedImageFromFile, PackPairedDetInputs


def test_load_resizes_fake_and_warns_once(tmp_path):
    real = np.full((20, 30, 3), 10, np.uint8)
    cv2.imwrite(str(tmp_path / 'r.jpg'), real)
    cv2.imwrite(str(tmp_path / 'f.png'), np.full((10, 15, 3), 200, np.uint8))
    load = LoadPairedImageFromFile()
    info = dict(img_path=str(tmp_path / 'r.jpg'),
                fake_img_path=str(tmp_path / 'f.png'))
    with pytest.warns(UserWarning, match=r'f\.png is 15x10 .* 30x20'):
        out = load(dict(info))
    assert out['fake_img'].shape == out['img'].shape == (20, 30, 3)
    assert (out['fake_img'] == 200).all()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        load(dict(info))
    with pytest.raises(KeyError, match='PairedDataset'):
        load(dict(img_path=info['img_path']))


@pytest.mark.parametrize('domain', ['source', 'target'])
def test_pack_four_streams(domain):
    results = dict(
        img=np.zeros((8, 6, 3), np.uint8),
        fake_img=np.ones((8, 6, 3), np.uint8), domain=domain, img_id=3,
        img_path='real/a.jpg', fake_img_path='fake/a.png',
        img_shape=(8, 6), ori_shape=(8, 6),
        gt_bboxes=HorizontalBoxes(np.array([[0, 0, 2, 2], [1, 1, 3, 3]],
                                           np.float32)),
        gt_bboxes_labels=np.array([0, 1]),
        gt_ignore_flags=np.array([False, True]))
    out = PackPairedDetInputs()(results)
    other = 'target' if domain == 'source' else 'source'
    assert set(out['inputs']) == set(out['data_samples']) == {
        'source_real', 'source_fake', 'target_real', 'target_fake'}
    assert out['inputs'][f'{other}_real'] is None
    assert out['data_samples'][f'{other}_fake'] is None
    real, fake = (out['data_samples'][f'{domain}_{s}']
                  for s in ('real', 'fake'))
    assert out['inputs'][f'{domain}_real'].shape == (3, 8, 6)
    assert int(out['inputs'][f'{domain}_fake'].sum()) == 8 * 6 * 3
    assert torch.equal(real.gt_instances.bboxes.tensor,
                       fake.gt_instances.bboxes.tensor)
    assert len(real.gt_instances) == 1 and len(real.ignored_instances) == 1
    assert real.img_path == 'real/a.jpg' and fake.img_path == 'fake/a.png'
    assert real.fake_img_path == 'fake/a.png'
    assert real.domain == fake.domain == domain and real.img_id == 3


@pytest.mark.parametrize('kind', [
    'uint8', 'flipped', 'flipped_vertically', 'float32', 'gray',
    'five_channels'
])
def test_pack_images_as_mmdet_does(kind, monkeypatch):
    rng = np.random.default_rng(0)
    channels = {'gray': 1, 'five_channels': 5}.get(kind, 3)
    imgs = [rng.integers(0, 255, (16, 12, channels), dtype=np.uint8)
            for _ in range(2)]
    if kind == 'flipped':
        imgs = [np.flip(img, axis=1) for img in imgs]
    elif kind == 'flipped_vertically':
        imgs = [np.flip(img, axis=0) for img in imgs]
    elif kind == 'float32':
        imgs = [img.astype(np.float32) / 7 for img in imgs]
    for img in imgs:
        img.flags.writeable = False  # as they come from the image cache
    results = dict(img=imgs[0], fake_img=imgs[1], domain='source',
                   img_shape=(16, 12), ori_shape=(16, 12))
    splits = []
    split = cv2.split
    monkeypatch.setattr(
        cv2, 'split', lambda *args: splits.append(1) or split(*args))
    out = PackPairedDetInputs()(results)
    mmdet = PackDetInputs()
    for img, stream in zip(imgs, ('source_real', 'source_fake')):
        expected = mmdet(dict(img=img))['inputs']
        assert out['inputs'][stream].dtype == expected.dtype
        assert torch.equal(out['inputs'][stream], expected)
        assert out['inputs'][stream].is_contiguous()
    # C-contiguous images with up to 4 channels and their horizontal flips:
    # one split each, no transposing copy
    assert len(splits) == (
        0 if kind in ('five_channels', 'flipped_vertically') else 2)


def test_pack_needs_domain():
    with pytest.raises(KeyError, match='domain'):
        PackPairedDetInputs()(dict(img=np.zeros((2, 2, 3), np.uint8)))
