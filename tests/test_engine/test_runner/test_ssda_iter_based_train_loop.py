"""Exact, replay-free resume of SSDAIterBasedTrainLoop on a tiny YOLOv5."""
import copy
import os
import os.path as osp
from functools import partial

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import ConcatDataset
from mmengine.dataset import worker_init_fn as mmengine_seeding
from mmengine.runner import Runner

import mmssda.engine.hooks.random_state_hook  # noqa: F401
import mmssda.engine.optimizers.non_finite_skip_optim_wrapper  # noqa: F401
from mmssda.engine.runner import ssda_iter_based_train_loop as loop_mod
from mmssda.engine.runner.ssda_iter_based_train_loop import \
    SSDAIterBasedTrainLoop
from tests.conftest import CONFIG_DIR, make_coco_shapes
from tests.training_helpers import load_checkpoint as load
from tests.training_helpers import omit_config_text, tensors_equal


def iter_cfg(data_root, work_dir, max_iters, name, sampler='multi_domain'):
    """tiny_yolov5 as an iteration-based run over two plain datasets."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_yolov5.py'))
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset.data_root = data_root + '/'
    if sampler == 'multi_domain':
        sampler_cfg = dict(type='MultiDomainSampler', source_per_batch=1,
                           target_per_batch=1, seed=None)
    else:
        sampler_cfg = dict(type='InfiniteSampler', shuffle=True)
    cfg.train_dataloader.sampler = sampler_cfg
    cfg.train_dataloader.dataset = dict(
        type='ConcatDataset', datasets=[dataset, copy.deepcopy(dataset)])
    cfg.train_cfg = dict(type='SSDAIterBasedTrainLoop', max_iters=max_iters,
                         val_interval=1000)
    for key in ('val', 'test'):
        cfg[f'{key}_dataloader'] = None
        cfg[f'{key}_cfg'] = None
        cfg[f'{key}_evaluator'] = None
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0,
             end=4)
    ]
    cfg.optim_wrapper.type = 'mmssda.NonFiniteSkipOptimWrapper'
    cfg.default_hooks.param_scheduler = dict(type='ParamSchedulerHook')
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=2, by_epoch=False, save_best=None)
    cfg.log_processor = dict(by_epoch=False)
    cfg.custom_hooks = [*cfg.custom_hooks, dict(type='RandomStateHook')]
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = work_dir
    cfg.experiment_name = name
    cfg.visualizer.name = name
    return cfg


@pytest.fixture(autouse=True)
def cheap_config_text(monkeypatch):
    omit_config_text(monkeypatch)


@pytest.fixture
def load_counter(monkeypatch):
    """Indices loaded through ConcatDataset.__getitem__."""
    loads = []
    getitem = ConcatDataset.__getitem__

    def counting_getitem(self, idx):
        loads.append(idx)
        return getitem(self, idx)

    monkeypatch.setattr(ConcatDataset, '__getitem__', counting_getitem)
    return loads


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    make_coco_shapes(root, num_images=4)
    return root


def resume_cfg(shapes_root, work_dir, name, **kwargs):
    cfg = iter_cfg(shapes_root, work_dir, 4, name, **kwargs)
    cfg.resume = True
    cfg.load_from = osp.join(work_dir, 'iter_2.pth')
    return cfg


def test_resume_is_exact_and_loads_no_skipped_batch(shapes_root, tmp_path,
                                                    load_counter):
    full_dir, half_dir = str(tmp_path / 'full'), str(tmp_path / 'half')
    Runner.from_cfg(iter_cfg(shapes_root, full_dir, 4, 'full')).train()
    assert len(load_counter) == 4 * 2

    Runner.from_cfg(iter_cfg(shapes_root, half_dir, 2, 'half')).train()
    half = load(osp.join(half_dir, 'iter_2.pth'))
    # random states and the sampler seed survive weights_only loading
    assert set(half['random_states']) == {'python', 'numpy', 'torch', 'cuda'}
    seed = half['message_hub']['runtime_info']['train_sampler_seed']
    assert isinstance(seed, int)

    load_counter.clear()
    runner = Runner.from_cfg(resume_cfg(shapes_root, half_dir, 'resumed'))
    assert isinstance(runner.train_loop, SSDAIterBasedTrainLoop)
    runner.train()
    # the stream restarted at batch 2 with the interrupted run's seed
    # (the sampler was built with seed=None: a new random seed): the two
    # consumed batches were not loaded again
    sampler = runner.train_dataloader.sampler
    assert (sampler._start_iter, sampler.seed) == (2, seed)
    assert len(load_counter) == 2 * 2

    full = load(osp.join(full_dir, 'iter_4.pth'))
    resumed = load(osp.join(half_dir, 'iter_4.pth'))
    for key in ('state_dict', 'ema_state_dict', 'optimizer',
                'param_schedulers', 'random_states'):
        tensors_equal(full[key], resumed[key], key)
    assert full['meta']['iter'] == resumed['meta']['iter'] == 4

    # without RandomStateHook the augmentation after the resume differs
    cfg = resume_cfg(shapes_root, half_dir, 'resumed_no_rng')
    cfg.custom_hooks = cfg.custom_hooks[:-1]
    cfg.work_dir = str(tmp_path / 'no_rng')
    os.makedirs(cfg.work_dir)
    Runner.from_cfg(cfg).train()
    no_rng = load(osp.join(cfg.work_dir, 'iter_4.pth'))
    assert any(not torch.equal(full['state_dict'][k], no_rng['state_dict'][k])
               for k in full['state_dict'])


def test_fallback_replay_for_samplers_without_set_start_iter(
        shapes_root, tmp_path, load_counter):
    work_dir = str(tmp_path / 'inf')
    Runner.from_cfg(
        iter_cfg(shapes_root, work_dir, 2, 'inf_half',
                 sampler='infinite')).train()
    load_counter.clear()
    runner = Runner.from_cfg(
        resume_cfg(shapes_root, work_dir, 'inf_resumed', sampler='infinite'))
    assert runner.train_loop.resumable_sampler is None
    runner.train()
    # MMEngine's replay: the 2 consumed batches are loaded again
    assert len(load_counter) == 4 * 2
    assert load(osp.join(work_dir, 'iter_4.pth'))['meta']['iter'] == 4


@pytest.mark.parametrize('keep', [True, False])
def test_workers_keep_large_buffers_after_their_seeding(
        shapes_root, tmp_path, monkeypatch, keep):
    cfg = iter_cfg(shapes_root, str(tmp_path), 2, f'workers_{keep}')
    cfg.train_dataloader.num_workers = 1
    cfg.train_dataloader.persistent_workers = False
    cfg.train_cfg.keep_worker_buffers = keep
    loop = Runner.from_cfg(cfg).train_loop
    init = loop.dataloader.worker_init_fn
    if not keep:
        assert init.func is mmengine_seeding
        return
    assert isinstance(init, partial) and \
        init.func is loop_mod.init_data_worker
    # MMEngine's seeding first, unchanged, then the malloc settings
    assert init.keywords['previous'].func is mmengine_seeding
    assert init.keywords['previous'].keywords['seed'] == 0
    calls = []
    monkeypatch.setattr(loop_mod, 'keep_large_buffers',
                        lambda: calls.append('buffers'))
    loop_mod.init_data_worker(3, previous=calls.append)
    assert calls == [3, 'buffers']
    # the workers run it: a batch loads
    assert next(iter(loop.dataloader))
