"""Extract the student-EMA or the teacher of an SSDA checkpoint.

Writes a plain mmyolo checkpoint (``state_dict`` + ``meta`` with
``dataset_meta``) and a plain config (the ``detector`` of the SSDA config
with its test pipeline and dataloaders, ``default_scope='mmyolo'``) that
mmdet's ``DetInferencer`` and mmyolo's demos run unchanged.

Example:
    python tools/model_converters/extract_detector.py \\
        configs/ssda_yolov5s_city2foggy.py work_dirs/x/best.pth \\
        work_dirs/x/yolov5s_foggy.pth
    # -> work_dirs/x/yolov5s_foggy.pth and work_dirs/x/yolov5s_foggy.py
"""
import argparse
import copy
import os
import os.path as osp
import warnings

import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import CheckpointLoader

from mmssda.registry import DATASETS, METRICS, TRANSFORMS
from mmssda.utils import register_all_modules

#: Keys of an SSDA config that only make sense for teacher-student training.
TRAINING_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper',
                 'param_scheduler', 'custom_hooks', 'resume', 'load_from',
                 'detector', 'auto_scale_lr', 'tta_model')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Extract a plain detector from an SSDA checkpoint')
    parser.add_argument('config', help='the SSDA config of the checkpoint')
    parser.add_argument('checkpoint', help='the SSDA checkpoint')
    parser.add_argument(
        'out', help='output checkpoint (.pth); the config is written beside '
        'it with the extension .py')
    parser.add_argument(
        '--model',
        choices=['student', 'teacher'],
        default='student',
        help='student: the student-EMA if the checkpoint has one (saved by '
        'StudentEMAHook), else the raw student; teacher: the mean teacher')
    parser.add_argument(
        '--force', action='store_true', help='overwrite existing outputs')
    return parser.parse_args(argv)


def extract_state_dict(checkpoint: dict, model: str) -> dict:
    """The ``model`` (student or teacher) weights without their prefix."""
    prefix = f'{model}.'
    state_dict = {
        k[len(prefix):]: v
        for k, v in checkpoint['state_dict'].items() if k.startswith(prefix)
    }
    if not state_dict:
        raise KeyError(f'The checkpoint has no "{prefix}*" weights: it is '
                       'not a teacher-student checkpoint')
    if model == 'student' and 'ema_state_dict' not in checkpoint:
        warnings.warn('The checkpoint has no ema_state_dict: extracting the '
                      'raw student, not the student-EMA')
    return state_dict


def dataset_meta(checkpoint: dict, cfg: Config) -> dict:
    """Class names etc.: from the checkpoint, else the test dataset cfg."""
    meta = checkpoint.get('meta', {}).get('dataset_meta')
    if meta:
        return meta
    metainfo = cfg.test_dataloader.dataset.get('metainfo')
    if not metainfo:
        raise ValueError('Neither the checkpoint meta nor the test dataset '
                         'config gives the class names')
    return dict(metainfo)


def _scope_for_mmyolo(cfg, registries=(DATASETS, TRANSFORMS, METRICS)):
    """Prefix mmssda-only types with ``mmssda.`` so mmyolo's scope finds
    them."""
    if isinstance(cfg, dict):
        type_name = cfg.get('type')
        if isinstance(type_name, str) and '.' not in type_name:
            for registry in registries:
                if type_name in registry.module_dict:
                    cfg['type'] = f'mmssda.{type_name}'
        for value in cfg.values():
            _scope_for_mmyolo(value, registries)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _scope_for_mmyolo(value, registries)
    return cfg


def plain_config(cfg: Config) -> Config:
    """The SSDA config's detector as a plain mmyolo test config."""
    plain = copy.deepcopy(cfg._cfg_dict.to_dict())
    plain['model'] = plain['model']['detector']
    for key in TRAINING_KEYS:
        plain.pop(key, None)
    plain['default_scope'] = 'mmyolo'
    plain['val_cfg'] = dict(type='ValLoop')
    plain['test_cfg'] = dict(type='TestLoop')
    plain['default_hooks'] = dict(
        checkpoint=dict(type='CheckpointHook', interval=1),
        visualization=dict(type='mmdet.DetVisualizationHook'))
    plain.setdefault(
        'visualizer',
        dict(
            type='mmdet.DetLocalVisualizer',
            vis_backends=[dict(type='LocalVisBackend')],
            name='visualizer'))
    plain.pop('custom_imports', None)
    data_keys = ('val_dataloader', 'test_dataloader', 'val_evaluator',
                 'test_evaluator')
    for key in data_keys:
        _scope_for_mmyolo(plain.get(key))
    if 'mmssda.' in repr([plain.get(key) for key in data_keys]):
        plain['custom_imports'] = dict(
            imports=['mmssda.datasets'], allow_failed_imports=False)
    return Config(ConfigDict(plain))


def output_paths(out: str, force: bool):
    """``(checkpoint, config)`` paths; refuse to overwrite unless forced."""
    root, _ = osp.splitext(out)
    paths = (root + '.pth', root + '.py')
    existing = [p for p in paths if osp.exists(p)]
    if existing and not force:
        raise FileExistsError(
            f'{existing} exist; pass --force to overwrite them')
    return paths


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    ckpt_path, cfg_path = output_paths(args.out, args.force)
    cfg = Config.fromfile(args.config)
    # mmssda's loaders (weights_only=True, MMEngine's types allow-listed)
    checkpoint = CheckpointLoader.load_checkpoint(
        args.checkpoint, map_location='cpu', logger='silent')
    state_dict = extract_state_dict(checkpoint, args.model)
    meta = dict(
        dataset_meta=dataset_meta(checkpoint, cfg),
        extracted_from=osp.abspath(args.checkpoint),
        extracted_model='student-EMA' if args.model == 'student'
        and 'ema_state_dict' in checkpoint else args.model)
    os.makedirs(osp.dirname(osp.abspath(ckpt_path)), exist_ok=True)
    torch.save(dict(state_dict=state_dict, meta=meta), ckpt_path)
    plain_config(cfg).dump(cfg_path)
    print(f'Wrote {ckpt_path} ({meta["extracted_model"]}) and {cfg_path}')


if __name__ == '__main__':
    main()
