"""tools/analysis_tools/benchmark_demo.py: the ablation variants and a tiny
ablation run."""
import importlib.util
import json
import os
import os.path as osp
import sys

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmssda.apis import detector_overrides
from mmssda.apis.adaptation_benchmark import stage_config
from mmssda.registry import MODELS
from tests.test_models.utils import REPO

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_demo.py')


@pytest.fixture(scope='module')
def tool():
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        spec = importlib.util.spec_from_file_location('benchmark_demo', TOOL)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(osp.join(REPO, 'tools'))
    return module


def variant_config(tool, name):
    cfg = Config.fromfile(tool.ABLATION_CONFIG)
    cfg.merge_from_dict(tool.VARIANTS[name][1])
    return cfg


def test_every_variant_builds_and_changes_what_it_says(tool):
    with DefaultScope.overwrite_default_scope('mmssda'):
        models = {
            name: MODELS.build(variant_config(tool, name).model)
            for name in tool.VARIANTS
        }
    paper = models[tool.REFERENCE]
    assert paper.distill_loss is not None
    assert paper.distill_loss.loss_weight == 0.005  # the paper's lambda
    assert paper.consistency_loss is not None
    assert list(models['source_only'].supervised_streams) == ['source_real']
    assert models['source_only'].distill_loss is None
    assert models['source_fake'].consistency_loss is None
    assert list(models['source_fake'].supervised_streams) == [
        'source_real', 'source_fake'
    ]
    assert models['consistency'].distill_loss is None
    assert models['consistency'].consistency_loss is not None
    assert models['distill_weight'].distill_loss.loss_weight == \
        tool.LARGE_DISTILL_WEIGHT > 0.005
    assert models['adaptive_thr'].adaptive_score_thr is not None
    assert paper.adaptive_score_thr is None
    assert type(models['soft'].distill_loss).__name__ == \
        'YOLOSoftDistillLoss'
    assert models['soft'].distill_loss.loss_weight == 0.005
    assert models['ignore'].semi_train_cfg.empty_pseudo_policy == 'ignore'
    assert paper.semi_train_cfg.empty_pseudo_policy == 'background'
    assert models['teacher_target_bn'].teacher_keeps_bn_stats
    assert not paper.teacher_keeps_bn_stats
    assert models['student_target_bn'].student_keeps_target_bn_stats
    assert not paper.student_keeps_target_bn_stats
    model = models['source_only_target_bn']
    assert model.student_keeps_target_bn_stats
    assert model.distill_loss is None and model.consistency_loss is None
    assert list(model.supervised_streams) == ['source_real']
    model = models['distill_warmup']
    assert model.semi_train_cfg.distill_warmup_iters == \
        tool.DISTILL_WARMUP_ITERS > 0
    assert model.distill_weight_scale < 1 == paper.distill_weight_scale
    # strong views: the target pairs' pipeline only
    source, target = variant_config(
        tool, 'strong_views').train_dataloader.dataset.datasets
    assert 'StrongView' in [t['type'] for t in target.pipeline]
    assert 'StrongView' not in [t['type'] for t in source.pipeline]
    paper_target = variant_config(
        tool, 'paper').train_dataloader.dataset.datasets[1]
    assert 'StrongView' not in [t['type'] for t in paper_target.pipeline]
    for name in tool.BEST_CANDIDATES:
        assert name in tool.VARIANTS


def test_unknown_variant_is_named(tool, capsys):
    with pytest.raises(SystemExit):
        tool.parse_args(['--ablation', '--variants', 'papr'])
    assert "unknown ['papr']" in capsys.readouterr().err


def demo_data(tool, tmp_path, monkeypatch, num_images, num_val):
    """A tiny fog_shapes set in ``tmp_path`` that the tool uses instead of
    the repository's (its setup() moves there)."""
    monkeypatch.chdir(tmp_path)
    from mmssda.datasets import generate_fog_shapes
    data_root = 'data/fog_shapes/'
    generate_fog_shapes(
        data_root, seed=0, num_source=num_images, num_target=num_images,
        num_val=num_val, img_size=96)
    monkeypatch.setattr(tool, 'setup', lambda: data_root)


def test_tiny_ablation_runs_resumes_and_combines_the_best(
        tool, tmp_path, monkeypatch):
    demo_data(tool, tmp_path, monkeypatch, num_images=6, num_val=4)
    monkeypatch.setattr(tool, 'BEST_CANDIDATES', ['consistency'])
    work_dir = str(tmp_path / 'ablation')
    argv = [
        '--ablation', '--seeds', '0', '1', '--variants', 'consistency',
        'paper', 'best', '--burn-in-iters', '2', '--adapt-iters', '2',
        '--evals', '2', '--last-k', '2', '--work-dir', work_dir,
        '--cfg-options', 'default_hooks.logger.interval=1',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'
    ]
    state = tool.main(argv)
    assert state['chosen'] == ['consistency']
    assert set(state['results']) == {'consistency', 'paper', 'best'}
    for variant in state['results'].values():
        assert set(variant) == {'0', '1'}
        for stats in variant.values():
            assert 0 <= stats['mAP50'] <= stats['mAP50_best'] <= 1
    # one burn-in per seed, every variant resumed it at iteration 2
    for seed in (0, 1):
        seed_dir = osp.join(work_dir, f'seed_{seed}')
        assert osp.isfile(osp.join(seed_dir, 'burn_in', 'iter_2.pth'))
        assert not osp.exists(osp.join(seed_dir, 'paper', 'iter_4.pth'))
        with open(osp.join(seed_dir, 'paper', 'result.json')) as f:
            steps = [
                s['step'] for s in json.load(f)['scalars']
                if 'student/coco/bbox_mAP_50' in s
            ]
        assert steps == [3, 4]
    # the distillation logs exist where distillation runs, not elsewhere
    assert state['results']['paper']['0']['num_pseudo'] is not None
    assert state['results']['consistency']['0']['num_pseudo'] is None
    # best = paper + consistency's overrides: no distillation
    best_cfg = Config.fromfile(
        osp.join(work_dir, 'seed_0', 'best',
                 osp.basename(tool.ABLATION_CONFIG)))
    assert best_cfg.model.distill_loss is None
    with open(osp.join(work_dir, 'results.md')) as f:
        table = f.read()
    assert table.count('\n') == 5  # header, rule, three variants
    assert '| best: paper + consistency |' in table
    assert '| + distillation (paper recipe, lambda 0.005) |' in table

    # rerunning the command trains nothing again
    result_file = osp.join(work_dir, 'seed_1', 'best', 'result.json')
    before = os.stat(result_file).st_mtime_ns
    again = tool.main(argv)
    assert os.stat(result_file).st_mtime_ns == before
    assert again['aggregate'] == state['aggregate']


def test_fake_settings_pick_their_ssda_config_and_variants(tool):
    assert tool.stage_configs('translated') == tool.CONFIGS
    for fakes in ('weak', 'none'):
        configs = tool.stage_configs(fakes)
        assert configs['ssda'] == tool.FAKE_SETTINGS[fakes] != \
            tool.CONFIGS['ssda']
        for stage in ('burn_in', 'source_only', 'oracle'):
            assert configs[stage] == tool.CONFIGS[stage]
    # strong views keep the setting's fakes; only the target pipeline
    # changes
    weak = tool.ablation_variants('weak')
    source, target = weak['strong_views'][1]['train_dataloader'][
        'dataset']['datasets']
    for dataset in (source, target):
        assert dataset['fake_root'] is None
        assert dataset['fake_pipeline'][0]['type'] == 'ColorStatsTransfer'
    assert 'StrongView' in [t['type'] for t in target['pipeline']]
    assert 'StrongView' not in [t['type'] for t in source['pipeline']]
    # without fakes, the variants that need a source-fake stream are gone
    none = tool.ablation_variants('none')
    assert set(tool.VARIANTS) - set(none) == set(tool.NEEDS_FAKES)
    cfg = Config.fromfile(tool.FAKE_SETTINGS['none'])
    cfg.merge_from_dict(none['paper'][1])
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(cfg.model)
    assert model.consistency_loss is None
    assert list(model.supervised_streams) == ['source_real']
    assert model.distill_loss is not None


def test_fake_settings_work_dirs_and_unknown_variants(tool, capsys):
    assert tool.parse_args(['--ablation']).work_dir == 'work_dirs/ablation'
    assert tool.parse_args(['--ablation', '--fakes', 'weak']).work_dir == \
        'work_dirs/ablation_fakes-weak'
    assert tool.parse_args(['--fakes', 'none']).work_dir == \
        'work_dirs/demo_benchmark_fakes-none'
    with pytest.raises(SystemExit):
        tool.parse_args(
            ['--ablation', '--fakes', 'none', '--variants', 'consistency'])
    assert "unknown ['consistency'] with --fakes none" in \
        capsys.readouterr().err


@pytest.mark.parametrize('detector, head', [('yolov8', 'YOLOv8Head'),
                                            ('rtmdet', 'RTMDetHead')])
def test_detector_puts_its_model_in_every_stage(tool, detector, head):
    overrides = tool.stage_overrides(detector)
    assert {'detector', 'data_preprocessor'} <= set(overrides['model'])
    own = Config.fromfile(sys.modules['demo'].DETECTORS[detector])
    for stage, config in tool.CONFIGS.items():
        plain = Config.fromfile(config).to_dict()
        cfg = stage_config(config, stage, '/tmp/unused', 2, 0, 1,
                           overrides=overrides)
        swapped = cfg.to_dict()
        for key in ('detector', 'data_preprocessor'):
            assert swapped['model'][key] == own.model[key].to_dict(), stage
        assert swapped['model']['detector'] != plain['model']['detector']
        # a part the stage turns off stays off
        for key, value in plain['model'].items():
            if value is None:
                assert swapped['model'][key] is None, (stage, key)
        # the data is the stage's own, the optimizer the detector's
        assert swapped['train_dataloader'] == plain['train_dataloader']
        assert swapped['optim_wrapper'] == own.optim_wrapper.to_dict()
        scheduler = swapped['default_hooks']['param_scheduler']
        assert scheduler['warmup_bias_lr'] == \
            own.default_hooks.param_scheduler.warmup_bias_lr
        with DefaultScope.overwrite_default_scope('mmssda'):
            model = MODELS.build(cfg.model)
        assert type(model.student.bbox_head).__name__ == head
    # the detector config is the demo's SSDA config with that detector
    ssda = Config.fromfile(tool.CONFIGS['ssda'])
    ssda.merge_from_dict(overrides)
    assert ssda.model.to_dict() == own.model.to_dict()
    assert tool.stage_overrides('yolov5') == {}


def test_rtmdet_demo_trains_with_its_own_optimizer(tool):
    overrides = tool.stage_overrides('rtmdet')
    cfg = stage_config(tool.CONFIGS['ssda'], 'ssda', '/tmp/unused', 2, 0, 1,
                       overrides=overrides)
    # AdamW whole: no SGD argument (momentum, nesterov) left over
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=0.001, weight_decay=0.05, batch_size_per_gpu=16,
        foreach=True)
    assert cfg.default_hooks.param_scheduler.warmup_bias_lr == 0
    assert 'optim_wrapper' not in tool.stage_overrides('yolov8')
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(cfg.model)
        optimizer = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    assert type(optimizer).__name__ == 'AdamW'
    assert [g['weight_decay'] for g in optimizer.param_groups] == \
        [0.05, 0., 0.]


def test_detector_overrides_refuse_a_config_that_changes_the_recipe(
        tmp_path):
    base = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes.py')
    changed = tmp_path / 'changed.py'
    changed.write_text(f"_base_ = {base!r}\ntrain_cfg = dict(max_iters=5)\n")
    with pytest.raises(ValueError, match='it changes train_cfg$'):
        detector_overrides(str(changed), base)
    # of the hooks, only the learning-rate hook's settings may change
    changed.write_text(f"_base_ = {base!r}\n"
                       "default_hooks = dict(logger=dict(interval=5))\n")
    with pytest.raises(ValueError, match='it changes default_hooks.logger$'):
        detector_overrides(str(changed), base)


def test_demo_comparison_with_another_detector(tool, tmp_path, monkeypatch):
    demo_data(tool, tmp_path, monkeypatch, num_images=4, num_val=2)
    work_dir = str(tmp_path / 'yolov8')
    argv = [
        '--detector', 'yolov8', '--seeds', '0', '--burn-in-iters', '2',
        '--adapt-iters', '2', '--evals', '1', '--last-k', '1',
        '--work-dir', work_dir, '--cfg-options',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False'
    ]
    tool.main(argv)
    with open(osp.join(work_dir, 'results.json')) as f:
        results = json.load(f)
    assert set(results['per_seed']) == {'0'}
    assert results['settings']['detector'] == 'yolov8'
    seed_dir = osp.join(work_dir, 'seed_0')
    assert osp.isfile(osp.join(seed_dir, 'pseudo_labels.png'))
    # every stage trained (and saved) YOLOv8, with the run's options
    for stage in ('burn_in', 'source_only', 'ssda', 'oracle'):
        (dumped, ) = [
            f for f in os.listdir(osp.join(seed_dir, stage))
            if f.endswith('.py')
        ]
        cfg = Config.fromfile(osp.join(seed_dir, stage, dumped))
        assert cfg.model.detector.bbox_head.type == 'YOLOv8Head', stage
        assert cfg.train_dataloader.num_workers == 0
    # rerunning resumes: nothing trains again, and the report's teacher
    # builds in the recipe's scope though no runner set it
    result_file = osp.join(seed_dir, 'ssda', 'result.json')
    before = os.stat(result_file).st_mtime_ns
    with DefaultScope.overwrite_default_scope('mmdet'):
        tool.main(argv)
    assert os.stat(result_file).st_mtime_ns == before
    assert tool.parse_args(['--detector', 'rtmdet']).work_dir == \
        'work_dirs/demo_benchmark_rtmdet'
