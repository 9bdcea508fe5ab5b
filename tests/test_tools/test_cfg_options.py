"""``--cfg-options`` of tools/train.py and tools/test.py: an override of a
config file's top-level variable takes effect everywhere or stops with the
keys to set; the config dumped in the work dir is the one that ran."""
import copy
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmssda.models.detectors.ssda_detector import SSDADetector
from mmssda.utils import recipe_mismatches
from mmssda.utils.config_checks import HEAD_TEST_CFG_KEYS, check_option_keys
from mmssda.utils.config_overrides import (RECIPE_VARIABLES, RUNNER_KEYS,
                                           merge_cfg_options,
                                           read_config_syntax)
from tests.training_helpers import REPO, TINY_SSDA, make_fog_shapes, run_python
from tools import test as test_tool
from tools import train as train_tool

FOG = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes.py')
L960 = osp.join(REPO, 'configs', 'ssda_yolov5l_city2foggy_960.py')
_PARSED = {}


def parsed(config):
    """``Config.fromfile(config)``, parsed once per test session."""
    if config not in _PARSED:
        _PARSED[config] = Config.fromfile(config)
    return copy.deepcopy(_PARSED[config])


def train_cfg_with(config, *options):
    """The config tools/train.py would run with ``--cfg-options``."""
    args = train_tool.parse_args([config, '--cfg-options', *options])
    return train_tool.merge_args(parsed(config), args)


@pytest.mark.parametrize('config, option, to_set', [
    (FOG, 'max_iters=100', ['set train_cfg.max_iters=100 instead']),
    (FOG, 'val_interval=10',
     ['default_hooks.checkpoint.interval=10', 'train_cfg.val_interval=10']),
    (FOG, 'source_per_batch=4', [
        'train_dataloader.sampler.source_per_batch=4',
        'train_dataloader.batch_size (computed from source_per_batch in '
        'configs/_base_/ssda_yolov5_s.py)',
        'optim_wrapper.optimizer.batch_size_per_gpu (computed from '
        'source_per_batch'
    ]),
    (FOG, 'distill_weight=0.1', ['model.distill_loss.loss_weight=0.1']),
    (FOG, 'consistency_weight=1.0',
     ['model.consistency_loss.loss_weight=1.0']),
    (FOG, 'teacher_momentum=0.5', ['custom_hooks.0.momentum=0.5']),
    (FOG, 'burn_in_iters=5', ['custom_hooks.0.burn_in_iters=5']),
    (FOG, 'base_lr=0.1', ['optim_wrapper.optimizer.lr=0.1']),
    (FOG, 'lr_factor=0.5', ['default_hooks.param_scheduler.lr_factor=0.5']),
    (FOG, 'train_num_workers=0', ['train_dataloader.num_workers=0']),
    (FOG, 'pseudo_score_thr=0.3',
     ['model.semi_train_cfg.pseudo_label_cfg.score_thr=0.3']),
    (FOG, 'pseudo_label_cfg.score_thr=0.3',
     ['model.semi_train_cfg.pseudo_label_cfg.score_thr=0.3']),
    (FOG, 'widen_factor=0.5', [
        'model.detector.backbone.widen_factor=0.5',
        'model.detector.bbox_head.head_module.widen_factor=0.5',
        'model.detector.neck.widen_factor=0.5'
    ]),
    (FOG, 'data_root=elsewhere/',
     ["train_dataloader.dataset.datasets.0.dataset.data_root='elsewhere/'",
      'train_dataloader.dataset.datasets.0.fake_root (computed from '
      'data_root']),
    (L960, 'max_iters=100', ['train_cfg.max_iters=100']),
    (L960, 'target_per_batch=2',
     ['train_dataloader.sampler.target_per_batch=2']),
    (L960, 'deepen_factor=0.33',
     ['model.detector.backbone.deepen_factor=0.33']),
    # a value that only the child overrides with a constant still names
    # the key the runner reads
    (L960, 'val_interval=10', ['default_hooks.checkpoint.interval=10']),
])
def test_refused_override_names_the_keys_to_set(config, option, to_set):
    with pytest.raises(SystemExit) as e:
        train_cfg_with(config, option)
    message = str(e.value)
    key = option.split('=')[0]
    assert message.startswith(f'error: --cfg-options {key}=')
    assert f'does not reach the values computed from {key.split(".")[0]} ' \
        'when the config file was parsed: set ' in message
    for key in to_set:
        assert key in message


def test_unused_and_unknown_top_level_keys_are_refused():
    # the mmyolo base's epochs: the recipe's train_cfg dropped them
    with pytest.raises(SystemExit, match='max_epochs=3 changes nothing'):
        train_cfg_with(FOG, 'max_epochs=3')
    # the fog config sets the hook's warmup_iters=0 itself, after the base
    # computed it from the variable
    with pytest.raises(SystemExit) as e:
        train_cfg_with(FOG, 'warmup_iters=5')
    assert 'warmup_iters=5 changes nothing' in str(e.value)
    assert str(e.value).endswith(
        'set default_hooks.param_scheduler.warmup_iters instead.')
    with pytest.raises(SystemExit,
                       match='no top-level key max_iter.*did you mean '
                       'max_iters'):
        train_cfg_with(FOG, 'max_iter=3')


def test_tools_test_applies_the_same_check(tmp_path):
    args = test_tool.parse_args(
        [FOG, str(tmp_path / 'any.pth'), '--cfg-options', 'max_iters=3'])
    with pytest.raises(SystemExit, match='set train_cfg.max_iters=3'):
        train_tool.apply_common_args(parsed(FOG), args)


def test_valid_overrides_take_effect():
    # the variable with every key computed from it
    cfg = train_cfg_with(FOG, 'max_iters=7', 'train_cfg.max_iters=7')
    assert cfg.train_cfg.max_iters == 7 and cfg.max_iters == 7
    cfg = train_cfg_with(FOG, 'train_cfg.max_iters=5', 'load_from=None',
                         'model.distill_loss.loss_weight=0.1')
    assert cfg.train_cfg.max_iters == 5
    assert cfg.model.distill_loss.loss_weight == 0.1
    # img_scale is re-derived by scale_recipe, which the recipe calls
    before = parsed(FOG)
    cfg = train_cfg_with(FOG, 'img_scale=(128,128)')
    assert recipe_mismatches(before) == [] and recipe_mismatches(cfg) == []
    mosaic = cfg.train_dataloader.dataset.datasets[0].pipeline[2]
    assert mosaic.type == 'PairedMosaic' and mosaic.img_scale == (128, 128)
    loss_obj = cfg.model.detector.bbox_head.loss_obj.loss_weight
    assert loss_obj == pytest.approx(
        before.model.detector.bbox_head.loss_obj.loss_weight *
        (128 / 192)**2)
    # an explicit value given with it is kept (the train loop then refuses
    # it if it does not follow img_scale)
    cfg = train_cfg_with(FOG, 'img_scale=(128,128)',
                         'model.detector.bbox_head.loss_obj.loss_weight=0.3')
    assert cfg.model.detector.bbox_head.loss_obj.loss_weight == 0.3


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + '_x'
    return 1 if value is None else None


@pytest.mark.parametrize(
    'config', sorted(glob.glob(osp.join(REPO, 'configs', '*.py'))),
    ids=osp.basename)
def test_no_scalar_variable_of_a_shipped_config_is_overridden_silently(
        config):
    """Every top-level scalar variable that the runner does not read is
    refused when overridden alone (it changes nothing by itself), each
    named in the one error."""
    cfg = parsed(config)
    syntax = read_config_syntax(config)
    options = {
        key: _changed(value)
        for key, value in cfg.to_dict().items()
        if key not in RUNNER_KEYS and key not in RECIPE_VARIABLES
        and (value is None or isinstance(value, (bool, int, float, str)))
    }
    assert len(options) >= 5
    with pytest.raises(ValueError) as e:
        merge_cfg_options(cfg, options, syntax)
    for key, value in options.items():
        assert f'--cfg-options {key}={value!r}' in str(e.value)


@pytest.mark.parametrize(
    'config', sorted(glob.glob(osp.join(REPO, 'configs', '*.py'))),
    ids=osp.basename)
def test_shipped_configs_pass_the_strict_option_checks(config):
    """The strict option dicts refuse no key a shipped config sets."""
    model = parsed(config).model
    schema = dict(
        SSDADetector.default_semi_train_cfg,
        pseudo_label_cfg=HEAD_TEST_CFG_KEYS)
    check_option_keys(model.get('semi_train_cfg'), schema,
                      'model.semi_train_cfg')
    check_option_keys(model.get('semi_test_cfg'),
                      SSDADetector.default_semi_test_cfg,
                      'model.semi_test_cfg')


def test_dumped_config_is_the_one_that_ran(tmp_path):
    """tools/train.py with valid overrides (img_scale re-derived; max_iters
    with the keys computed from it): one iteration at the new size, and the
    config in the work dir equals the effective one."""
    make_fog_shapes(tmp_path, num_source=2, num_target=2)
    work_dir = str(tmp_path / 'work')
    options = [
        'img_scale=(64,64)', 'max_iters=1', 'train_cfg.max_iters=1',
        'train_cfg.val_interval=2'
    ]
    log = run_python(
        [train_tool.__file__, TINY_SSDA, '--work-dir', work_dir,
         '--cfg-options', *options],
        cwd=str(tmp_path), timeout=600)
    assert 'Iter(train) [1/1]' in log
    # MMEngine's dump (and the visualizer's copy) of the runner's config
    dumps = [osp.join(work_dir, 'tiny_ssda_fog_shapes.py'),
             *glob.glob(osp.join(work_dir, '*', 'vis_data', 'config.py'))]
    args = train_tool.parse_args(
        [TINY_SSDA, '--work-dir', work_dir, '--cfg-options', *options])
    effective = train_tool.merge_args(Config.fromfile(TINY_SSDA), args)
    assert effective.train_dataloader.dataset.datasets[0].pipeline[
        2].img_scale == (64, 64)
    assert len(dumps) == 2
    for dumped in dumps:
        assert Config.fromfile(dumped).to_dict() == effective.to_dict()
