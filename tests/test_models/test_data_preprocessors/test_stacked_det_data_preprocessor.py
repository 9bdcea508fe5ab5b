import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample

from mmssda.models.data_preprocessors import StackedDetDataPreprocessor
from mmssda.registry import MODELS

CFG = dict(mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True)


def _data(shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8)
        for h, w in shapes
    ]
    samples = [DetDataSample(metainfo=dict(img_shape=s)) for s in shapes]
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('shapes,divisor', [
    ([(32, 48)] * 4, 1),
    ([(30, 45)] * 3, 32),  # padded to the divisor
    ([(32, 48), (40, 24), (32, 48)], 1),  # not stackable: the parent's path
    ([(32, 48)], 1),
])
def test_same_output_as_mmdet(shapes, divisor):
    cfg = dict(CFG, pad_size_divisor=divisor)
    want = DetDataPreprocessor(**cfg)(_data(shapes), True)
    got = StackedDetDataPreprocessor(**cfg)(_data(shapes), True)
    assert torch.equal(got['inputs'], want['inputs'])
    for g, w in zip(got['data_samples'], want['data_samples']):
        assert g.batch_input_shape == w.batch_input_shape
        assert g.pad_shape == w.pad_shape


def test_stacks_same_size_images(monkeypatch):
    # MMEngine's ImgDataPreprocessor gets one batch tensor (one cast and
    # normalisation) instead of a list to convert image by image
    from mmengine.model import ImgDataPreprocessor
    seen = []
    forward = ImgDataPreprocessor.forward

    def recording_forward(self, data, training=False):
        seen.append(type(data['inputs']))
        return forward(self, data, training)

    monkeypatch.setattr(ImgDataPreprocessor, 'forward', recording_forward)
    preprocessor = MODELS.build(dict(CFG, type='StackedDetDataPreprocessor'))
    assert isinstance(preprocessor, StackedDetDataPreprocessor)
    preprocessor(_data([(32, 48)] * 4), True)
    preprocessor(_data([(32, 48), (40, 24)]), True)
    assert seen == [torch.Tensor, list]
    assert not StackedDetDataPreprocessor._stackable(
        [torch.zeros(3, 4, 4), torch.zeros(3, 4, 4, dtype=torch.float64)])
