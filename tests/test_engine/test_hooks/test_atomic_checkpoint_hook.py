"""AtomicCheckpointHook and AtomicLocalBackend on a toy model through
MMEngine's Runner: the order of writes and deletions, atomic writes, a
failed save, a relative last_checkpoint, best paths of a copied work dir
and the removals a killed run left pending."""
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.fileio import LocalBackend
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmssda.engine.hooks import AtomicCheckpointHook
from mmssda.registry import DATASETS, HOOKS, METRICS, MODELS
from mmssda.utils import AtomicLocalBackend


@MODELS.register_module(force=True)
class AtomicCkptToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return [out]


@DATASETS.register_module(force=True)
class AtomicCkptToyDataset(Dataset):
    metainfo = dict(classes=('a', ))

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return dict(inputs=torch.full((2, ), float(index)))


@METRICS.register_module(force=True)
class AtomicCkptIterMetric(BaseMetric):
    """``step``: the training iteration (a new best at every validation)."""

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        return dict(step=MessageHub.get_current_instance().get_info('iter'))


def build_runner(work_dir, name, max_iters=3, resume_from=None, **hook):
    loader = dict(
        dataset=dict(type='AtomicCkptToyDataset'),
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        batch_size=2,
        num_workers=0)
    hook = dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=1,
        max_keep_ckpts=1, **hook)
    with_val = hook.get('save_best') is not None
    return Runner(
        model=dict(type='AtomicCkptToyModel'),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=1),
        val_dataloader=loader if with_val else None,
        val_cfg=dict() if with_val else None,
        val_evaluator=dict(type='AtomicCkptIterMetric') if with_val else None,
        default_hooks=dict(checkpoint=hook, logger=None),
        load_from=resume_from,
        resume=resume_from is not None,
        default_scope='mmssda')


@pytest.fixture
def file_ops(monkeypatch):
    """Every completed checkpoint write and every removal, in order."""
    ops = []
    put, remove = AtomicLocalBackend.put, LocalBackend.remove

    def record_put(self, obj, filepath):
        put(self, obj, filepath)
        ops.append(('put', osp.basename(str(filepath))))

    def record_remove(self, filepath):
        ops.append(('remove', osp.basename(str(filepath))))
        remove(self, filepath)

    monkeypatch.setattr(AtomicLocalBackend, 'put', record_put)
    monkeypatch.setattr(LocalBackend, 'remove', record_remove)
    return ops


def test_backend_write_is_all_or_nothing(tmp_path, monkeypatch):
    """put replaces the target only with the complete file: a failure
    before the rename leaves the old content and no temporary file."""
    target = tmp_path / 'iter_1.pth'
    backend = AtomicLocalBackend()
    backend.put(b'old', target)
    assert target.read_bytes() == b'old'

    def fail(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', fail)
    with pytest.raises(OSError, match='disk full'):
        backend.put(b'new', target)
    assert target.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['iter_1.pth']
    assert AtomicLocalBackend.is_temp_file(
        osp.basename(AtomicLocalBackend.temp_path(target)))


def test_old_checkpoints_deleted_only_after_the_new_one(tmp_path, file_ops):
    """max_keep_ckpts=1: each old checkpoint is deleted after the new
    checkpoint and last_checkpoint are written; last_checkpoint holds the
    name relative to the work dir."""
    build_runner(tmp_path, 'order').train()
    assert file_ops == [
        ('put', 'iter_1.pth'), ('put', 'last_checkpoint'),
        ('put', 'iter_2.pth'), ('put', 'last_checkpoint'),
        ('remove', 'iter_1.pth'),
        ('put', 'iter_3.pth'), ('put', 'last_checkpoint'),
        ('remove', 'iter_2.pth'),
    ]
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_3.pth'
    assert sorted(n for n in os.listdir(tmp_path)
                  if n.endswith('.pth')) == ['iter_3.pth']


def test_previous_best_deleted_after_the_new_best(tmp_path, file_ops):
    """save_best: the previous best goes only after the new best, the
    periodic checkpoint that records it and last_checkpoint."""
    build_runner(tmp_path, 'best', max_iters=2, save_best='step',
                 rule='greater').train()
    assert file_ops == [
        ('put', 'iter_1.pth'), ('put', 'last_checkpoint'),
        ('put', 'best_step_iter_1.pth'),
        ('put', 'iter_1.pth'), ('put', 'last_checkpoint'),
        ('put', 'iter_2.pth'), ('put', 'last_checkpoint'),
        ('remove', 'iter_1.pth'),
        ('put', 'best_step_iter_2.pth'),
        ('put', 'iter_2.pth'), ('put', 'last_checkpoint'),
        ('remove', 'best_step_iter_1.pth'),
    ]


def test_failed_save_deletes_nothing(tmp_path, monkeypatch):
    """A save that raises leaves the previous checkpoint, last_checkpoint
    and no temporary file."""
    save, calls = torch.save, []

    def fail_on_the_second(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError('disk full')
        save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', fail_on_the_second)
    with pytest.raises(OSError, match='disk full'):
        build_runner(tmp_path, 'fail').train()
    assert torch.load(tmp_path / 'iter_1.pth')['meta']['iter'] == 1
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_1.pth'
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.part')]


def test_copied_work_dir_keeps_the_original_best(tmp_path):
    """Resumed in a copy, the recorded best path (into the original dir) is
    looked for in the copy: a new best deletes the copy's old best, never
    the original's."""
    original = tmp_path / 'original'
    build_runner(original, 'orig', max_iters=1, save_best='step',
                 rule='greater').train()
    copy = tmp_path / 'copy'
    import shutil
    shutil.copytree(original, copy)
    runner = build_runner(copy, 'copy', max_iters=2,
                          resume_from=str(copy / 'iter_1.pth'),
                          save_best='step', rule='greater')
    runner.train()
    assert (original / 'best_step_iter_1.pth').is_file()
    assert not (copy / 'best_step_iter_1.pth').exists()
    assert (copy / 'best_step_iter_2.pth').is_file()


def test_resume_deletes_the_removals_a_kill_left(tmp_path):
    """A checkpoint records the names it has still to delete; resuming
    from it deletes those left behind (and stale temporary files)."""
    build_runner(tmp_path, 'first', max_iters=2).train()
    ckpt = torch.load(tmp_path / 'iter_2.pth')
    assert ckpt['message_hub']['runtime_info'][
        AtomicCheckpointHook.pending_key] == ['iter_1.pth']
    # as if killed before deleting iter_1 (and during another write)
    torch.save(torch.load(tmp_path / 'iter_2.pth'), tmp_path / 'iter_1.pth')
    (tmp_path / AtomicLocalBackend.temp_path('iter_9.pth')).write_bytes(b'')
    build_runner(tmp_path, 'second', max_iters=2,
                 resume_from=str(tmp_path / 'iter_2.pth')).train()
    assert sorted(os.listdir(tmp_path)).count('iter_1.pth') == 0
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.part')]
    assert (tmp_path / 'iter_2.pth').is_file()


def test_registered_and_built_from_config():
    hook = HOOKS.build(dict(type='AtomicCheckpointHook', interval=5))
    assert isinstance(hook, AtomicCheckpointHook)
