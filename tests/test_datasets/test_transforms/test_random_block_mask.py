"""RandomBlockMask: MIC-style block masking that only overwrites pixels."""
import numpy as np
import pytest

from mmssda.datasets import RandomBlockMask


def _image(height=50, width=70, seed=0):
    # no pixel equals the fill value (0), so masked pixels are recognisable
    rng = np.random.default_rng(seed)
    return rng.integers(1, 256, (height, width, 3), dtype=np.uint8)


def test_masks_whole_grid_blocks_and_moves_no_pixel():
    img = _image()
    np.random.seed(0)
    out = RandomBlockMask(block_size=16, mask_ratio=0.5)(dict(img=img.copy()))
    masked = (out['img'] == 0).all(-1)
    # unmasked pixels are the original ones, masked pixels the fill value
    np.testing.assert_array_equal(out['img'][~masked], img[~masked])
    assert out['img'].shape == img.shape
    # the mask is constant on each 16x16 block of the grid (the last row and
    # column of blocks are cut to 50 x 70)
    blocks = set()
    for y in range(0, 50, 16):
        for x in range(0, 70, 16):
            block = masked[y:y + 16, x:x + 16]
            assert block.all() or not block.any(), (y, x)
            blocks.add(bool(block.all()))
    assert blocks == {True, False}


def test_mask_ratio_and_fill_per_channel():
    img = _image(320, 320)
    np.random.seed(1)
    out = RandomBlockMask(block_size=8, mask_ratio=0.3, fill=(1, 2, 3))(
        dict(img=img.copy()))['img']
    masked = (out == (1, 2, 3)).all(-1) & ~(img == (1, 2, 3)).all(-1)
    # 1600 blocks, each masked with probability 0.3
    assert 0.25 < masked.mean() < 0.35


def test_prob_and_ratio_extremes():
    img = _image()
    np.random.seed(0)
    out = RandomBlockMask(mask_ratio=1.0, prob=0.0)(dict(img=img.copy()))
    np.testing.assert_array_equal(out['img'], img)
    out = RandomBlockMask(mask_ratio=1.0, prob=1.0)(dict(img=img.copy()))
    assert (out['img'] == 0).all()
    out = RandomBlockMask(mask_ratio=0.0)(dict(img=img.copy()))
    np.testing.assert_array_equal(out['img'], img)


def test_deterministic_under_numpy_seed_and_leaves_input_array():
    img = _image()
    transform = RandomBlockMask(block_size=8, mask_ratio=0.5)
    outs = []
    for seed in (3, 3, 4):
        np.random.seed(seed)
        outs.append(transform(dict(img=img))['img'])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    # the caller's array is not written into
    np.testing.assert_array_equal(img, _image())


@pytest.mark.parametrize('kwargs', [
    dict(block_size=0), dict(block_size=2.5), dict(mask_ratio=1.5),
    dict(prob=-0.1)])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='RandomBlockMask'):
        RandomBlockMask(**kwargs)
