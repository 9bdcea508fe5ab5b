"""Atmospheric scattering fog: the numpy core and the pipeline transform."""
import numpy as np
import pytest

from mmssda.datasets.transforms.atmospheric_fog import (AtmosphericFog,
                                                        apply_atmospheric_fog,
                                                        ground_plane_depth)
from mmssda.registry import TRANSFORMS


def _image(seed=0, h=48, w=64):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_ground_plane_depth():
    depth = ground_plane_depth(100, 30, horizon=0.4, near=10, far=200)
    assert depth.shape == (100, 30) and depth.dtype == np.float32
    assert np.all(depth[:41] == 200)  # sky, at and above the horizon
    assert depth[-1, 0] == pytest.approx(10 * 60 / 59.5)
    assert np.all(np.diff(depth[:, 0]) <= 0)  # nearer towards the bottom
    assert np.all(depth == depth[:, :1])
    with pytest.raises(ValueError, match='horizon'):
        ground_plane_depth(10, 10, horizon=1.0)


def test_scattering_model_values():
    img = _image()
    depth = np.full(img.shape[:2], 30.0)
    out = apply_atmospheric_fog(img, depth, 0.02, 0.8, clip=False)
    t = np.exp(-0.02 * 30.0)
    np.testing.assert_allclose(out, img * t + 255 * 0.8 * (1 - t))
    fogged = apply_atmospheric_fog(img, depth, 0.02, 0.8)
    assert fogged.dtype == np.uint8 and fogged.shape == img.shape
    np.testing.assert_array_equal(fogged, np.rint(out).astype(np.uint8))
    np.testing.assert_array_equal(
        apply_atmospheric_fog(img, depth, 0.0, 0.8), img)
    np.testing.assert_array_equal(
        apply_atmospheric_fog(img, depth, 10.0, 0.8), np.full_like(img, 204))
    # contrast falls monotonically with beta
    stds = [apply_atmospheric_fog(img, depth, b).std()
            for b in (0, 0.01, 0.02, 0.05)]
    assert stds == sorted(stds, reverse=True) and stds[-1] < 0.5 * stds[0]
    # a per-pixel beta map, and per-channel airlight
    beta = np.zeros(img.shape[:2])
    beta[:, 32:] = 0.05
    out = apply_atmospheric_fog(img, depth, beta, (1.0, 0.5, 0.0),
                                clip=False)
    np.testing.assert_allclose(out[:, :32], img[:, :32])
    t = np.exp(-1.5)
    np.testing.assert_allclose(
        out[:, 32:], img[:, 32:] * t + 255 * np.array([1, .5, 0]) * (1 - t))
    with pytest.raises(ValueError, match='depth shape'):
        apply_atmospheric_fog(img, depth[1:], 0.02)


def test_transform_default_and_given_depth():
    img = _image(1)
    t = TRANSFORMS.build(dict(type='AtmosphericFog', beta=0.03,
                              airlight=0.9))
    assert isinstance(t, AtmosphericFog)
    res = t(dict(img=img.copy()))
    np.testing.assert_array_equal(res['img'], img)
    np.testing.assert_array_equal(
        res['fake_img'],
        apply_atmospheric_fog(img, ground_plane_depth(48, 64), 0.03, 0.9))
    # the top (sky) is foggier than the bottom
    diff = np.abs(res['fake_img'].astype(int) - img)
    assert diff[:10].mean() > diff[-10:].mean()
    depth = np.random.default_rng(2).uniform(5, 80, (48, 64))
    res = t(dict(img=img, depth=depth))
    np.testing.assert_array_equal(
        res['fake_img'], apply_atmospheric_fog(img, depth, 0.03, 0.9))
    res = AtmosphericFog(beta=0.03, out_key='img', depth_key=None)(
        dict(img=img, depth=depth))
    np.testing.assert_array_equal(
        res['img'],
        apply_atmospheric_fog(img, ground_plane_depth(48, 64), 0.03, 0.85))


def test_transform_ranges_are_seeded_and_errors():
    img = _image(3)
    outs = []
    for _ in range(2):
        t = AtmosphericFog(beta=(0.01, 0.05), airlight=(0.7, 0.9), seed=5)
        outs.append([t(dict(img=img))['fake_img'] for _ in range(4)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(outs[0][0], outs[0][1])
    with pytest.raises(ValueError, match="'depth'"):
        AtmosphericFog()(dict(img=img, depth=np.ones((10, 10))))
    with pytest.raises(KeyError, match="'img'"):
        AtmosphericFog()(dict(fake_img=img))
    with pytest.raises(ValueError, match='airlight'):
        AtmosphericFog(airlight=1.5)
    with pytest.raises(ValueError, match='beta'):
        AtmosphericFog(beta=(0.05, 0.01))
