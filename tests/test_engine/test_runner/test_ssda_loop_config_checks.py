"""SSDAIterBasedTrainLoop refuses configs that would train silently wrong:
batches that straddle the domains, and size-dependent values that do not
follow img_scale (overrides through --cfg-options)."""
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from tests.training_helpers import TINY_SSDA, make_fog_shapes, omit_config_text


@pytest.fixture
def tiny_cfg(tmp_path, monkeypatch):
    make_fog_shapes(tmp_path)
    monkeypatch.chdir(tmp_path)
    omit_config_text(monkeypatch)
    cfg = Config.fromfile(TINY_SSDA)
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


def build_loop(cfg):
    return Runner.from_cfg(cfg).train_loop


@pytest.mark.parametrize('key,value,message', [
    ('train_dataloader.sampler.source_per_batch', 1,
     r'train_dataloader.batch_size=4 must equal train_dataloader.sampler.'
     r'source_per_batch \(1\) \+ train_dataloader.sampler.target_per_batch '
     r'\(2\) = 3'),
    ('train_dataloader.batch_size', 6,
     r'train_dataloader.batch_size=6 must equal .*= 4'),
    ('optim_wrapper.optimizer.batch_size_per_gpu', 16,
     r'optim_wrapper.optimizer.batch_size_per_gpu=16 must equal '
     r'train_dataloader.batch_size \(4'),
])
def test_batch_must_be_source_plus_target(tiny_cfg, key, value, message):
    tiny_cfg.merge_from_dict({key: value})
    with pytest.raises(ValueError, match=message):
        build_loop(tiny_cfg)


def test_consistent_batch_override_trains(tiny_cfg):
    tiny_cfg.merge_from_dict({
        'train_dataloader.sampler.source_per_batch': 1,
        'train_dataloader.batch_size': 3,
        'optim_wrapper.optimizer.batch_size_per_gpu': 3,
    })
    loop = build_loop(tiny_cfg)
    num_source = len(loop.dataloader.dataset.datasets[0])
    batches = iter(loop.dataloader.batch_sampler)
    for _ in range(3):  # every batch: 1 source then 2 target samples
        assert [i < num_source for i in next(batches)] == [
            True, False, False]


def test_img_scale_override_that_does_not_propagate(tiny_cfg):
    tiny_cfg.merge_from_dict({'img_scale': (128, 128)})
    with pytest.raises(ValueError) as err:
        build_loop(tiny_cfg)
    msg = str(err.value)
    assert 'img_scale=(128, 128)' in msg and 'scale_recipe(vars())' in msg
    assert ('train_dataloader.dataset.datasets.0.pipeline.2.img_scale='
            '(192, 192)') in msg
    assert 'model.detector.bbox_head.loss_obj.loss_weight=' in msg
