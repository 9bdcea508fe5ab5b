"""The demo's two settings without good fakes, trained for a few iterations
on a tiny generated set: weak fakes (a global colour transfer made online,
``configs/ssda_yolov5n_fog_shapes_weak_fakes.py``) and no fakes at all
(``configs/ssda_yolov5n_fog_shapes_no_fakes.py``: plain mean teacher, no
source-fake stream, no consistency term); and the loop's refusal of a model
that would still train on a source-fake that is the real image."""
import glob
import json
import os.path as osp
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from tests.training_helpers import REPO, make_fog_shapes, omit_config_text

WEAK = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes_weak_fakes.py')
NONE = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes_no_fakes.py')
MAX_ITERS = 2
#: The recipe shrunk as tests/data/configs/tiny_ssda_fog_shapes.py does,
#: through keys a user could set; score 0 so that the untrained teacher
#: gives pseudo-labels.
TINY = {
    **{
        f'model.detector.{part}.widen_factor': 0.125
        for part in ('backbone', 'neck', 'bbox_head.head_module')
    },
    'model.semi_train_cfg.pseudo_label_cfg.score_thr': 0.0,
    'train_dataloader.batch_size': 4,
    'train_dataloader.num_workers': 0,
    'train_dataloader.persistent_workers': False,
    'train_dataloader.sampler.source_per_batch': 2,
    'train_dataloader.sampler.target_per_batch': 2,
    'optim_wrapper.optimizer.batch_size_per_gpu': 4,
    'train_cfg.max_iters': MAX_ITERS,
    'train_cfg.val_interval': MAX_ITERS + 1,
    'default_hooks.checkpoint.interval': MAX_ITERS,
    'default_hooks.checkpoint.save_best': None,
    'default_hooks.logger.interval': 1,
    'randomness': dict(seed=0, deterministic=True),
    'val_cfg': None,
    'val_dataloader': None,
    'val_evaluator': None,
}


@pytest.fixture
def data(tmp_path, monkeypatch):
    make_fog_shapes(tmp_path, num_source=4, num_target=4)
    monkeypatch.chdir(tmp_path)
    omit_config_text(monkeypatch)
    return tmp_path


def tiny(config, work_dir, **overrides):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({**TINY, **overrides})
    cfg.work_dir = str(work_dir)
    # MMEngine hands a new runner the visualizer (and its log folder) of an
    # earlier runner of the same name
    cfg.visualizer.name = f'visualizer_{uuid.uuid4().hex}'
    return cfg


def first_batch(runner):
    """The first batch's images by stream (each sample fills the two
    streams of its domain; the others are None)."""
    inputs = next(iter(runner.train_loop.dataloader))['inputs']
    return {
        stream: [img for img in images if img is not None]
        for stream, images in inputs.items()
    }


def logged_keys(work_dir):
    [scalars] = glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json'))
    with open(scalars) as f:
        return set().union(*(json.loads(line) for line in f))


def test_no_fakes_is_plain_mean_teacher(data):
    work_dir = data / 'no_fakes'
    runner = Runner.from_cfg(tiny(NONE, work_dir))
    inputs = first_batch(runner)
    for domain in ('source', 'target'):
        assert len(inputs[f'{domain}_real']) == 2
        for real, fake in zip(inputs[f'{domain}_real'],
                              inputs[f'{domain}_fake']):
            assert torch.equal(real, fake)
    runner.train()
    keys = logged_keys(str(work_dir))
    assert any(k.startswith('source_real.loss') for k in keys)
    assert any(k.startswith('distill.loss') for k in keys)
    assert 'distill.num_pseudo' in keys
    assert not any(k.startswith(('source_fake.', 'consistency.'))
                   for k in keys)
    assert osp.isfile(osp.join(work_dir, f'iter_{MAX_ITERS}.pth'))


@pytest.mark.parametrize('model,named', [
    (dict(), ['supervised_streams', 'model.consistency_loss']),
    (dict(semi_train_cfg=dict(supervised_streams=['source_real']),
          consistency_loss=None), None),
    (dict(consistency_loss=None), ['supervised_streams']),
])
def test_source_fake_stream_refused_without_fakes(data, model, named):
    """The weak-fakes config with its fakes swapped for RealAsFake: the
    recipe still trains on source-fake and has a consistency term."""
    cfg = tiny(WEAK, data / 'work')
    for dataset in cfg.train_dataloader.dataset.datasets:
        dataset.fake_pipeline = [dict(type='RealAsFake')]
    cfg.merge_from_dict(dict(model=model))
    if named is None:
        Runner.from_cfg(cfg).train_loop  # builds: nothing to refuse
        return
    with pytest.raises(ValueError, match='RealAsFake') as err:
        Runner.from_cfg(cfg).train_loop
    for key in named:
        assert key in str(err.value)
    assert ('consistency_loss' in str(err.value)) == (
        'model.consistency_loss' in named)


def test_weak_fakes_are_made_online_and_train(data):
    work_dir = data / 'weak'
    runner = Runner.from_cfg(tiny(WEAK, work_dir))
    datasets = runner.train_loop.dataloader.dataset.datasets
    for dataset in datasets:
        assert dataset.fake_root is None
        assert type(dataset.fake_pipeline.transforms[0]).__name__ == \
            'ColorStatsTransfer'
    inputs = first_batch(runner)
    assert len(inputs['source_real']) == 2
    for real, fake in zip(inputs['source_real'], inputs['source_fake']):
        assert real.shape == fake.shape and not torch.equal(real, fake)
        # the global per-channel statistics moved (towards the fog images)
        assert not np.allclose(real.float().mean((1, 2)),
                               fake.float().mean((1, 2)), atol=1.0)
    runner.train()
    keys = logged_keys(str(work_dir))
    for branch in ('source_real', 'source_fake', 'distill'):
        assert any(k.startswith(f'{branch}.loss') for k in keys)
    assert 'consistency.loss' in keys


def test_no_fakes_with_target_bn_teacher_and_distill_warmup(data):
    """The teacher options of the no-fakes setting through the runner: the
    hook counts the distillation steps into the model and leaves the
    teacher's BatchNorm statistics to the teacher."""
    work_dir = data / 'teacher_options'
    cfg = tiny(
        NONE, work_dir, **{
            'model.semi_train_cfg.teacher_bn_stats': 'target',
            'model.semi_train_cfg.distill_warmup_iters': 4
        })
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    assert model.distill_steps == MAX_ITERS - 1
    assert model.distill_weight_scale == MAX_ITERS / 4
    assert any(k.startswith('distill.loss')
               for k in logged_keys(str(work_dir)))
    checkpoint = torch.load(
        osp.join(work_dir, f'iter_{MAX_ITERS}.pth'), weights_only=False)
    assert checkpoint['meta']['ssda_mean_teacher']['num_steps'] == MAX_ITERS
    # the teacher's statistics are its own: one target-fake batch per
    # iteration, while the student's come from its source-real and
    # target-real passes (the hook would copy the student's count)
    student = dict(model.student.named_buffers())
    counts = {
        name: buf.item()
        for name, buf in model.teacher.named_buffers()
        if name.endswith('num_batches_tracked')
    }
    assert counts
    for name, count in counts.items():
        assert count == MAX_ITERS, name
        assert student[name].item() == 2 * MAX_ITERS, name
