"""FDA style transfer: the numpy core and the pipeline transform."""
import os.path as osp

import cv2
import numpy as np
import pytest

from mmssda.datasets.transforms.fda_style_transfer import (FDAStyleTransfer,
                                                           fda_transfer,
                                                           fda_window)
from mmssda.registry import TRANSFORMS


def _smooth(rng, h, w, grid=4):
    return cv2.resize(rng.standard_normal((grid, grid, 3)).astype(np.float32),
                      (w, h), interpolation=cv2.INTER_CUBIC)


def _clear_image(rng, h=64, w=80):
    """Dark, contrasty: strong low-frequency structure plus detail."""
    img = 70 + 45 * _smooth(rng, h, w) + 12 * rng.standard_normal((h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _foggy_image(rng, h=64, w=80):
    """Bright and flat, like a foggy image."""
    img = 200 + 6 * _smooth(rng, h, w) + 2 * rng.standard_normal((h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _centered_amplitude(x):
    return np.abs(np.fft.fftshift(np.fft.fft2(x, axes=(0, 1)), axes=(0, 1)))


def test_window_size():
    assert fda_window(64, 80, 0.05) == 3  # floor(64 * 0.05)
    assert fda_window(512, 1024, 0.01) == 5
    assert fda_window(64, 80, 0.0) == -1
    with pytest.raises(ValueError, match='beta'):
        fda_window(64, 80, 0.5)


def test_shape_dtype_and_identity_at_beta_zero():
    rng = np.random.default_rng(0)
    src, ref = _clear_image(rng), _foggy_image(rng, 50, 37)
    out = fda_transfer(src, ref, 0.05)
    assert out.shape == src.shape and out.dtype == np.uint8
    assert not np.array_equal(out, src)
    np.testing.assert_array_equal(fda_transfer(src, ref, 0.0), src)
    gray = fda_transfer(src[..., 0], ref, 0.05)
    assert gray.shape == src.shape[:2] and gray.dtype == np.uint8


@pytest.mark.parametrize('shape,beta', [((64, 80), 0.05), ((63, 47), 0.1),
                                        ((48, 48), 0.02)])
def test_amplitude_swapped_in_window_kept_outside(shape, beta):
    rng = np.random.default_rng(1)
    h, w = shape
    src, ref = _clear_image(rng, h, w), _foggy_image(rng, h, w)
    out = fda_transfer(src, ref, beta, clip=False)
    assert out.dtype == np.float64 and out.shape == src.shape
    amp_out = _centered_amplitude(out)
    amp_src = _centered_amplitude(src.astype(np.float64))
    amp_ref = _centered_amplitude(ref.astype(np.float64))
    b = int(np.floor(min(h, w) * beta))
    window = np.zeros((h, w), bool)
    window[h // 2 - b:h // 2 + b + 1, w // 2 - b:w // 2 + b + 1] = True
    scale = amp_src.max()
    np.testing.assert_allclose(amp_out[window], amp_ref[window],
                               atol=1e-9 * scale)
    np.testing.assert_allclose(amp_out[~window], amp_src[~window],
                               atol=1e-9 * scale)
    # the window really differs between the two images, so the check bites
    assert np.abs(amp_src[window] - amp_ref[window]).max() > 1e-3 * scale
    # the phase of the source is kept
    phase = [np.angle(np.fft.fft2(x, axes=(0, 1))) for x in (out, src)]
    diff = np.angle(np.exp(1j * (phase[0] - phase[1])))
    strong = np.fft.ifftshift(amp_src, axes=(0, 1)) > 1e-6 * scale
    assert np.abs(diff[strong]).max() < 1e-6


def test_statistics_move_toward_the_reference():
    rng = np.random.default_rng(2)
    src, ref = _clear_image(rng), _foggy_image(rng)
    out = fda_transfer(src, ref, 0.05).astype(np.float64)
    src, ref = src.astype(np.float64), ref.astype(np.float64)
    for c in range(3):
        # the mean is the zero frequency: it becomes the reference's
        assert abs(out[..., c].mean() - ref[..., c].mean()) < 1.0
        assert abs(src[..., c].mean() - ref[..., c].mean()) > 50
        assert abs(out[..., c].std() - ref[..., c].std()) < \
            0.8 * abs(src[..., c].std() - ref[..., c].std())


def test_reference_is_resized():
    rng = np.random.default_rng(3)
    src, ref = _clear_image(rng), _foggy_image(rng, 128, 160)
    small = cv2.resize(ref, (80, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(
        fda_transfer(src, ref, 0.05), fda_transfer(src, small, 0.05))


@pytest.fixture
def ref_dir(tmp_path):
    rng = np.random.default_rng(4)
    folder = tmp_path / 'refs' / 'sub'
    folder.mkdir(parents=True)
    for i in range(4):
        cv2.imwrite(str(folder / f'fog_{i}.png'), _foggy_image(rng, 40, 50))
    (tmp_path / 'refs' / 'readme.txt').write_text('not an image')
    return str(tmp_path / 'refs')


def test_transform_writes_out_key_and_is_seeded(ref_dir):
    rng = np.random.default_rng(5)
    img = _clear_image(rng)
    cfg = dict(type='FDAStyleTransfer', ref_path=ref_dir, beta=(0.02, 0.08),
               seed=7)
    first, second = TRANSFORMS.build(cfg), TRANSFORMS.build(cfg)
    assert isinstance(first, FDAStyleTransfer)
    assert len(first.ref_files) == 4
    outs = []
    for t in (first, second):
        seq = []
        for _ in range(5):
            res = t(dict(img=img.copy()))
            np.testing.assert_array_equal(res['img'], img)
            assert res['fake_img'].shape == img.shape
            assert res['fake_img'].dtype == np.uint8
            assert osp.basename(res['fda_ref_path']).startswith('fog_')
            seq.append((res['fda_ref_path'], res['fake_img']))
        outs.append(seq)
    for (p1, f1), (p2, f2) in zip(*outs):
        assert p1 == p2
        np.testing.assert_array_equal(f1, f2)
    assert len({p for p, _ in outs[0]}) > 1
    # it is the core function with the chosen reference
    path, fake = outs[0][0]
    ref = cv2.imread(path)
    candidates = [fda_transfer(img, ref, b) for b in np.linspace(
        0.02, 0.08, 61)]
    assert any(np.array_equal(fake, c) for c in candidates)


def test_transform_options_and_errors(ref_dir, tmp_path):
    img = _clear_image(np.random.default_rng(6))
    same = FDAStyleTransfer(ref_dir, beta=0.0, out_key='img_fda')
    res = same(dict(img=img))
    np.testing.assert_array_equal(res['img_fda'], img)
    res = FDAStyleTransfer(ref_dir, prob=0.0, seed=0)(dict(img=img))
    np.testing.assert_array_equal(res['fake_img'], img)
    # a list file, with paths relative to it
    lst = tmp_path / 'refs' / 'list.txt'
    lst.write_text('# fog refs\nsub/fog_1.png\n\n')
    t = FDAStyleTransfer(str(lst), seed=0)
    assert t.ref_files == [osp.join(str(tmp_path / 'refs'), 'sub/fog_1.png')]
    assert t(dict(img=img))['fake_img'].shape == img.shape

    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='empty'):
        FDAStyleTransfer(str(empty))
    with pytest.raises(FileNotFoundError, match='nowhere'):
        FDAStyleTransfer(str(tmp_path / 'nowhere'))
    with pytest.raises(ValueError, match='beta'):
        FDAStyleTransfer(ref_dir, beta=0.6)
    with pytest.raises(KeyError, match="'img'"):
        FDAStyleTransfer(ref_dir)(dict(fake_img=img))
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(OSError, match='broken.jpg'):
        FDAStyleTransfer([str(broken)])(dict(img=img))


def test_random_params_cached_by_mmcv(ref_dir):
    """Under mmcv's ``cache_random_params`` (as used to apply one draw to
    both images of a pair) repeated calls reuse the same reference/beta."""
    from mmcv.transforms.utils import cache_random_params
    img = _clear_image(np.random.default_rng(8))
    t = FDAStyleTransfer(ref_dir, beta=(0.02, 0.08), seed=1)
    with cache_random_params(t):
        res = [t(dict(img=img)) for _ in range(4)]
    assert len({r['fda_ref_path'] for r in res}) == 1
    for r in res[1:]:
        np.testing.assert_array_equal(r['fake_img'], res[0]['fake_img'])
