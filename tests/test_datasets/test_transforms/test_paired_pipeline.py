"""The full paired YOLOv5 pipeline keeps the two images of a pair aligned."""
import cv2
import numpy as np
import torch

from mmssda.datasets import PairedDataset


def _dataset(data, helpers, pipeline):
    return PairedDataset(
        dataset=helpers['inner_cfg']('yolo', data['root']),
        fake_root=data['fake_root'], pipeline=pipeline)


def _image(tensor):
    return tensor.permute(1, 2, 0).numpy()


def test_copy_fake_is_pixel_identical(tmp_path, pair_data, paired_helpers,
                                      mmssda_scope):
    data = pair_data(tmp_path / 'd', num=4, fake='copy')
    ds = _dataset(data, paired_helpers,
                  paired_helpers['train_pipeline'](rotate=5.0, shear=2.0))
    flips = set()
    for seed in range(8):
        np.random.seed(seed)
        out = ds[seed % len(ds)]
        real = out['inputs']['source_real']
        fake = out['inputs']['source_fake']
        assert real.shape == fake.shape == (3, 64, 64)
        assert torch.equal(real, fake), seed
        assert out['inputs']['target_real'] is None
        sample = out['data_samples']['source_real']
        flips.add(sample.flip)
        assert len(sample.gt_instances) > 0
    assert flips == {True, False}


def test_copy_fake_val_pipeline_is_pixel_identical(tmp_path, pair_data,
                                                   paired_helpers,
                                                   mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2, fake='copy')
    scale = (48, 48)
    pipeline = [
        dict(type='LoadPairedImageFromFile'),
        dict(type='PairedTransform', transforms=[
            dict(type='YOLOv5KeepRatioResize', scale=scale),
            dict(type='LetterResize', scale=scale, allow_scale_up=False,
                 pad_val=dict(img=114))]),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackPairedDetInputs',
             meta_keys=('img_path', 'fake_img_path', 'pad_param',
                        'scale_factor'))
    ]
    out = _dataset(data, paired_helpers, pipeline)[0]
    real = out['inputs']['source_real']
    assert real.shape == (3, 48, 48)
    assert torch.equal(real, out['inputs']['source_fake'])
    # 80x64 -> 48x38 plus 5 + 5 rows of padding
    np.testing.assert_array_equal(
        out['data_samples']['source_real'].pad_param, [5, 5, 0, 0])


def _marker_mask(img):
    """Saturated (marker) pixels: backgrounds and padding are gray."""
    return cv2.cvtColor(np.ascontiguousarray(img),
                        cv2.COLOR_BGR2HSV)[..., 1] > 30


def test_marker_lands_at_the_same_place(tmp_path, pair_data, paired_helpers,
                                        mmssda_scope):
    data = pair_data(tmp_path / 'd', num=4, fake='different', marker=True,
                     real_ext='.png')
    ds = _dataset(data, paired_helpers,
                  paired_helpers['train_pipeline'](rotate=5.0, shear=2.0))
    for seed in range(6):
        np.random.seed(seed)
        out = ds[seed % len(ds)]
        real = _image(out['inputs']['source_real'])
        fake = _image(out['inputs']['source_fake'])
        assert not np.array_equal(real, fake)
        m_real, m_fake = _marker_mask(real), _marker_mask(fake)
        assert m_real.sum() > 20, seed
        iou = (m_real & m_fake).sum() / (m_real | m_fake).sum()
        assert iou > 0.9, (seed, iou)
        # the (transformed once) boxes enclose the markers of both images
        boxes = out['data_samples']['source_real'].gt_instances.bboxes
        inside = np.zeros_like(m_real)
        for x1, y1, x2, y2 in boxes.tensor.numpy():
            inside[max(int(y1) - 1, 0):int(np.ceil(y2)) + 1,
                   max(int(x1) - 1, 0):int(np.ceil(x2)) + 1] = True
            assert m_real[int(y1):int(np.ceil(y2)),
                          int(x1):int(np.ceil(x2))].any()
        for mask in (m_real, m_fake):
            assert (mask & inside).sum() >= 0.9 * mask.sum(), seed
