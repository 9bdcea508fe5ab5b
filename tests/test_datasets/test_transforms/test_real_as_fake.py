"""RealAsFake: the fake of a pair is a copy of its real image."""
import numpy as np
import pytest

from mmssda.registry import TRANSFORMS


def test_fake_is_an_equal_copy():
    transform = TRANSFORMS.build(dict(type='RealAsFake'))
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    results = transform(dict(img=img))
    np.testing.assert_array_equal(results['fake_img'], img)
    # a copy: a paired transform writing the fake leaves the real alone
    results['fake_img'][0, 0, 0] = 255
    assert img[0, 0, 0] == 0


def test_missing_image_is_named():
    with pytest.raises(KeyError, match=r"results\['img'\]"):
        TRANSFORMS.build(dict(type='RealAsFake'))(dict(gt_bboxes=None))
