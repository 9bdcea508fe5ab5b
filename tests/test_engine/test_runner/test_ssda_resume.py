"""Exact resume of the SSDA-YOLO teacher-student training.

The tiny SSDA recipe (tests/data/configs/tiny_ssda_fog_shapes.py: the demo's
fog_shapes config, widen 0.125, 2 + 2 pairs per iteration, pseudo-label
threshold 0 so that the teacher's pseudo-labels train the student) runs 4
iterations in one go; a second runner resumes from that run's iteration-2
checkpoint (the file an interrupted run would have left) and trains to 4.
Student, teacher, student-EMA, optimizer, random states, the mean-teacher
counter and the message hub's sampler position must be identical. Each
negative case removes one piece of the resume (random states, teacher,
student-EMA) and shows that the comparison catches it; the mean-teacher
counter's own round trip is tested in test_ssda_mean_teacher_hook.py.
"""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tests.training_helpers import (TINY_SSDA, load_checkpoint,
                                    make_fog_shapes, omit_config_text,
                                    tensors_equal, train)

MAX_ITERS = 4
#: Runtime info that must survive the resume (time- and path-dependent
#: entries such as ``eta`` and ``last_ckpt`` are left out).
RUNTIME_KEYS = ('train_sampler_seed', 'seed', 'iter', 'max_iters',
                'non_finite_steps', 'non_finite_consecutive')


def ssda_cfg(work_dir, name, resume_from=None):
    cfg = Config.fromfile(TINY_SSDA)
    cfg.work_dir = work_dir
    # MMEngine keeps visualizers (and loggers) by name: a second runner in
    # this process would otherwise log into the first run's directory
    cfg.experiment_name = name
    cfg.visualizer.name = f'{name}@{work_dir}'
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = resume_from
    return cfg


@pytest.fixture(scope='module')
def fog_dir(tmp_path_factory):
    """A folder holding data/fog_shapes and the uninterrupted run."""
    root = tmp_path_factory.mktemp('ssda_resume')
    make_fog_shapes(root)
    with pytest.MonkeyPatch.context() as mp:
        omit_config_text(mp)
        mp.chdir(root)
        runner = train(ssda_cfg(str(root / 'full'), 'ssda_full'))
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(scalars) as f:
        logged = [json.loads(line) for line in f if line.strip()]
    # the distillation branch was active with pseudo-labels on every step
    assert [r['distill.num_pseudo'] for r in logged if 'loss' in r] and all(
        r['distill.num_pseudo'] > 0 for r in logged if 'loss' in r)
    return root


@pytest.fixture
def in_fog_dir(fog_dir, monkeypatch):
    omit_config_text(monkeypatch)
    monkeypatch.chdir(fog_dir)
    return fog_dir


def resume(root, name, edit_checkpoint=None, edit_cfg=None):
    """Resume from the uninterrupted run's iteration-2 checkpoint (optionally
    edited) in ``root/name``; return the runner and the final checkpoint."""
    work_dir = root / name
    work_dir.mkdir()
    checkpoint = load_checkpoint(root / 'full' / 'iter_2.pth')
    if edit_checkpoint is not None:
        edit_checkpoint(checkpoint)
    torch.save(checkpoint, work_dir / 'iter_2.pth')
    cfg = ssda_cfg(str(work_dir), name, str(work_dir / 'iter_2.pth'))
    if edit_cfg is not None:
        edit_cfg(cfg)
    runner = train(cfg)
    return runner, load_checkpoint(work_dir / f'iter_{MAX_ITERS}.pth')


def test_ssda_resume_is_exact(in_fog_dir):
    full = load_checkpoint(in_fog_dir / 'full' / f'iter_{MAX_ITERS}.pth')
    runner, resumed = resume(in_fog_dir, 'resumed')

    # the data stream restarted at batch 2 with the interrupted run's seed
    sampler = runner.train_dataloader.sampler
    hub = full['message_hub']['runtime_info']
    assert sampler._start_iter == 2
    assert sampler.seed == hub['train_sampler_seed']

    # state_dict: 'student.*' holds the student-EMA (StudentEMAHook swaps it
    # in for saving) and 'teacher.*' the mean teacher; ema_state_dict:
    # 'module.*' the raw student and 'steps' the EMA's update count
    state = full['state_dict']
    assert {k.split('.')[0] for k in state} == {'student', 'teacher'}
    assert 'steps' in full['ema_state_dict']
    # the teacher is not a copy of the student: resuming it matters
    student = {k[len('module.'):]: v
               for k, v in full['ema_state_dict'].items()
               if k.startswith('module.')}
    assert any(not torch.equal(state[f'teacher.{k}'], v)
               for k, v in student.items() if v.is_floating_point())
    for key in ('state_dict', 'ema_state_dict', 'optimizer',
                'random_states'):
        tensors_equal(full[key], resumed[key], key)
    assert full['meta']['iter'] == resumed['meta']['iter'] == MAX_ITERS
    assert full['meta']['ssda_mean_teacher'] == \
        resumed['meta']['ssda_mean_teacher'] == dict(num_steps=MAX_ITERS)
    for key in RUNTIME_KEYS:
        assert hub[key] == resumed['message_hub']['runtime_info'][key], key


def drop_teacher(checkpoint):
    state = checkpoint['state_dict']
    for k in [k for k in state if k.startswith('teacher.')]:
        del state[k]


def drop_student_ema(checkpoint):
    del checkpoint['ema_state_dict']


def drop_random_state_hook(cfg):
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h['type'] != 'RandomStateHook'
    ]


@pytest.mark.parametrize(
    'case, edit_checkpoint, edit_cfg, differs',
    [
        # augmentation draws after the resume are not the interrupted run's
        ('no_random_states', None, drop_random_state_hook, 'state_dict'),
        # the resumed teacher would be a freshly initialised network
        ('no_teacher', drop_teacher, None, 'state_dict'),
        # the student would resume from the EMA weights, the EMA restart
        ('no_student_ema', drop_student_ema, None, 'ema_state_dict'),
    ])
def test_ssda_resume_fails_without(in_fog_dir, case, edit_checkpoint,
                                   edit_cfg, differs):
    full = load_checkpoint(in_fog_dir / 'full' / f'iter_{MAX_ITERS}.pth')
    _, resumed = resume(in_fog_dir, case, edit_checkpoint, edit_cfg)
    with pytest.raises(AssertionError):
        tensors_equal(full[differs], resumed[differs], differs)
