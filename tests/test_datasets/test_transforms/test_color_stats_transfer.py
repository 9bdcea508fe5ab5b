"""Global colour and contrast transfer: the numpy core and the pipeline
transform (reference handling shared with FDAStyleTransfer)."""
import cv2
import numpy as np
import pytest

from mmssda.datasets.transforms.color_stats_transfer import (
    ColorStatsTransfer, color_stats_transfer)
from mmssda.registry import TRANSFORMS


def _gradient_image(rng, h=48, w=64, base=60, scale=40):
    """Dark, contrasty, with a left-right brightness gradient."""
    ramp = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    img = base + scale * ramp + 10 * rng.standard_normal((h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _flat_bright_image(rng, h=30, w=20):
    img = np.array([210, 200, 190], np.float32) + 3 * rng.standard_normal(
        (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_matches_the_reference_statistics_per_channel():
    rng = np.random.default_rng(0)
    img, ref = _gradient_image(rng), _flat_bright_image(rng)
    out = color_stats_transfer(img, ref)
    assert out.shape == img.shape and out.dtype == np.uint8
    flat = out.reshape(-1, 3).astype(np.float64)
    ref_flat = ref.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(flat.mean(0), ref_flat.mean(0), atol=0.6)
    np.testing.assert_allclose(flat.std(0), ref_flat.std(0), atol=0.6)


def test_is_a_global_affine_map_per_channel():
    """Each output channel is an increasing affine function of the input
    channel alone: the spatial structure (the gradient's direction, the
    ranking of the pixels) is kept and nothing position-dependent is
    added."""
    rng = np.random.default_rng(1)
    img, ref = _gradient_image(rng), _flat_bright_image(rng)
    out = color_stats_transfer(img, ref).astype(np.float64)
    for c in range(3):
        x, y = img[..., c].ravel().astype(np.float64), out[..., c].ravel()
        slope, offset = np.polyfit(x, y, 1)
        assert slope > 0
        assert np.abs(y - (slope * x + offset)).max() <= 1.0
    # a brightness gradient of the same sign survives
    assert out[:, -8:].mean() > out[:, :8].mean()


def test_flat_channel_only_moves_its_mean():
    img = np.full((8, 8, 3), 50, np.uint8)
    ref = np.zeros((4, 4, 3), np.uint8)
    ref[..., 1] = 120
    ref[::2, :, 2] = 255
    out = color_stats_transfer(img, ref)
    assert np.all(out[..., 0] == 0)
    assert np.all(out[..., 1] == 120)
    assert np.all(out[..., 2] == round(ref[..., 2].mean()))


def test_channel_mismatch_is_refused():
    with pytest.raises(ValueError, match='same channels'):
        color_stats_transfer(
            np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 1), np.uint8))


def test_transform_uses_a_reference_of_the_other_domain(tmp_path):
    rng = np.random.default_rng(2)
    ref_dir = tmp_path / 'target'
    ref_dir.mkdir()
    refs = [_flat_bright_image(rng) for _ in range(2)]
    for i, ref in enumerate(refs):
        cv2.imwrite(str(ref_dir / f'{i}.png'), ref)
    transform = TRANSFORMS.build(
        dict(type='ColorStatsTransfer', ref_path=str(ref_dir), seed=0))
    assert isinstance(transform, ColorStatsTransfer)
    img = _gradient_image(rng)
    results = transform(dict(img=img.copy()))
    np.testing.assert_array_equal(results['img'], img)  # real untouched
    used = cv2.imread(results['fda_ref_path'])
    np.testing.assert_array_equal(results['fake_img'],
                                  color_stats_transfer(img, used))
    assert 'beta' not in repr(transform)


def test_prob_zero_copies(tmp_path):
    rng = np.random.default_rng(3)
    cv2.imwrite(str(tmp_path / 'r.png'), _flat_bright_image(rng))
    transform = ColorStatsTransfer(ref_path=str(tmp_path), prob=0.0)
    img = _gradient_image(rng)
    results = transform(dict(img=img))
    np.testing.assert_array_equal(results['fake_img'], img)
    assert results['fake_img'] is not img
    assert results['fda_ref_path'] is None
