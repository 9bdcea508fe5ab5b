"""SeededAlbu: albumentations draws that follow numpy's global seed."""
import numpy as np
from mmdet.datasets.transforms import Albu
from mmdet.structures.bbox import HorizontalBoxes

from mmssda.datasets import SeededAlbu

COLOUR = [
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
         hue=0.1, p=1.0),
    dict(type='GaussianBlur', sigma_limit=(0.1, 2.0), p=0.5),
    dict(type='Erasing', scale=(0.02, 0.2), fill='random', p=0.5)
]


def _results():
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    return dict(
        img=img, fake_img=img.copy(), img_shape=(48, 64),
        gt_bboxes=HorizontalBoxes(np.array([[2, 3, 20, 30]], np.float32)),
        gt_bboxes_labels=np.array([1]), gt_ignore_flags=np.array([False]))


def _run(transform, seed):
    np.random.seed(seed)
    return transform(_results())


def test_same_numpy_seed_same_image():
    transform = SeededAlbu(transforms=COLOUR)
    first, again, other = (_run(transform, s)['img'] for s in (5, 5, 6))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # consecutive calls advance numpy's generator: different draws
    np.random.seed(5)
    a, b = transform(_results())['img'], transform(_results())['img']
    assert not np.array_equal(a, b)


def test_mmdet_albu_ignores_numpy_seed():
    """Why SeededAlbu exists: mmdet.Albu's albumentations generator is
    seeded from the OS, so the numpy seed does not fix its output."""
    transform = Albu(transforms=COLOUR[:1], keymap={'img': 'image'})
    outs = [_run(transform, 5)['img'] for _ in range(3)]
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])


def test_image_only_by_default():
    out = _run(SeededAlbu(transforms=COLOUR), 0)
    reference = _results()
    assert not np.array_equal(out['img'], reference['img'])
    assert out['img'].shape == (48, 64, 3) and out['img'].dtype == np.uint8
    np.testing.assert_array_equal(out['fake_img'], reference['fake_img'])
    assert isinstance(out['gt_bboxes'], HorizontalBoxes)
    np.testing.assert_array_equal(out['gt_bboxes'].numpy(),
                                  reference['gt_bboxes'].numpy())
    np.testing.assert_array_equal(out['gt_bboxes_labels'], [1])
