import numpy as np
import pytest
from mmyolo.datasets.transforms import YOLOv5HSVRandomAug

from mmssda.datasets import PairedYOLOv5HSVRandomAug


def test_same_gains_as_unpaired():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)
    fake = rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)
    for seed in range(4):
        np.random.seed(seed)
        want_real = YOLOv5HSVRandomAug()(dict(img=real.copy()))['img']
        np.random.seed(seed)
        want_fake = YOLOv5HSVRandomAug()(dict(img=fake.copy()))['img']
        np.random.seed(seed)
        got = PairedYOLOv5HSVRandomAug()(dict(img=real, fake_img=fake))
        np.testing.assert_array_equal(got['img'], want_real)
        np.testing.assert_array_equal(got['fake_img'], want_fake)
        assert not np.array_equal(got['img'], real)


def test_needs_fake():
    with pytest.raises(KeyError, match='fake_img'):
        PairedYOLOv5HSVRandomAug()(dict(img=np.zeros((4, 4, 3), np.uint8)))
