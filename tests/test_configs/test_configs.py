"""Every config under configs/ parses, builds its model and names registered
engine and data components."""
import glob
import os.path as osp

import albumentations
import pytest
from mmengine.config import Config
from mmengine.registry import FUNCTIONS, DefaultScope

from mmssda.registry import (DATA_SAMPLERS, DATASETS, HOOKS, LOOPS, METRICS,
                             MODELS, OPTIM_WRAPPER_CONSTRUCTORS, TRANSFORMS)
from tests.test_models.utils import REPO

CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                       recursive=True))
DATA_CLASSES = ('PairedDataset', 'MultiDomainSampler',
                'LoadPairedImageFromFile', 'PairedTransform', 'PairedMosaic',
                'PairedYOLOv5HSVRandomAug', 'PackPairedDetInputs')


def load(path):
    return Config.fromfile(osp.join(REPO, path))


def resolve(registry, type_name):
    with DefaultScope.overwrite_default_scope('mmssda'):
        assert registry.get(type_name) is not None, type_name


def test_configs_found():
    assert {
        'configs/ssda_yolov5s_city2foggy.py',
        'configs/ssda_yolov5s_voc2clipart.py',
        'configs/source_only_yolov5s_city2foggy.py',
        'configs/oracle_yolov5s_city2foggy.py',
        'configs/ssda_yolov8s_city2foggy.py'
    } <= set(CONFIGS)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_model_and_engine(path):
    cfg = load(path)
    assert cfg.default_scope == 'mmssda'
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'SSDADetector'
    assert not any(p.requires_grad for p in model.teacher.parameters())
    hook_types = [h['type'] for h in cfg.custom_hooks]
    # mmyolo's EMAHook (it would average the whole wrapper) is replaced
    assert hook_types == [
        'SSDAMeanTeacherHook', 'StudentEMAHook', 'NonFiniteLossHook',
        'RandomStateHook'
    ]
    assert cfg.train_cfg.type == 'SSDAIterBasedTrainLoop'
    assert cfg.optim_wrapper.type == 'mmssda.NonFiniteSkipOptimWrapper'
    for hook in [*cfg.custom_hooks, *cfg.default_hooks.values()]:
        resolve(HOOKS, hook['type'])
    resolve(OPTIM_WRAPPER_CONSTRUCTORS, cfg.optim_wrapper.constructor)
    for loop in (cfg.train_cfg, cfg.val_cfg, cfg.test_cfg):
        resolve(LOOPS, loop['type'])
    evaluators = cfg.val_evaluator if isinstance(cfg.val_evaluator,
                                                 list) else [cfg.val_evaluator]
    for metric in evaluators:
        resolve(METRICS, metric['type'])


# Wrappers whose ``transforms`` are albumentations classes, not registered
# transforms.
ALBU_WRAPPERS = ('Albu', 'SeededAlbu')


def transform_types(pipeline):
    for transform in pipeline:
        yield transform['type']
        if transform['type'].rpartition('.')[2] in ALBU_WRAPPERS:
            for albu in transform['transforms']:
                assert hasattr(albumentations, albu['type']), albu['type']
            continue
        yield from transform_types(transform.get('transforms', []))
        yield from transform_types(transform.get('pre_transform', []))


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if 'datasets' in p or '/_base_/' not in p])
def test_config_data_types_resolve(path):
    missing = [
        name for name in DATA_CLASSES
        if name not in DATASETS.module_dict and name not in DATA_SAMPLERS.
        module_dict and name not in TRANSFORMS.module_dict
    ]
    if missing:
        pytest.skip(f'data classes not registered yet: {missing}')
    cfg = load(path)
    loader = cfg.train_dataloader
    resolve(DATA_SAMPLERS, loader.sampler.type)
    assert FUNCTIONS.get(loader.collate_fn.type) is not None
    resolve(DATASETS, loader.dataset.type)
    for dataset in loader.dataset.datasets:
        resolve(DATASETS, dataset.type)
        resolve(DATASETS, dataset.dataset.type)
        for name in transform_types(dataset.pipeline):
            resolve(TRANSFORMS, name)
    for name in transform_types(cfg.test_dataloader.dataset.pipeline):
        resolve(TRANSFORMS, name)
