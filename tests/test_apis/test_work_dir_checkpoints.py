"""mmssda.apis.work_dir_checkpoints on small hand-made checkpoints: reading
last_checkpoint, ordering the periodic checkpoints, the auto-resume choice
and its errors, the checks of a given file and of the work dir."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmssda.apis import (CheckpointFileError, checkpoint_problem,
                         find_resume_checkpoint, read_last_checkpoint,
                         resolve_checkpoints, step_checkpoints)


def save(path, step):
    torch.save(
        dict(meta=dict(epoch=0, iter=step), state_dict=dict(
            w=torch.zeros(1))), str(path))
    return str(path)


def test_last_checkpoint_relative_absolute_and_moved(tmp_path):
    """A relative record is taken in the work dir; an absolute one into
    another dir gives the same name inside the work dir when it is there,
    else is kept; no or an empty record is None."""
    work = tmp_path / 'work'
    work.mkdir()
    record = work / 'last_checkpoint'
    assert read_last_checkpoint(str(work)) is None
    record.write_text('')
    assert read_last_checkpoint(str(work)) is None
    record.write_text('iter_4.pth\n')
    assert read_last_checkpoint(str(work)) == str(work / 'iter_4.pth')

    elsewhere = tmp_path / 'original' / 'iter_4.pth'
    record.write_text(str(elsewhere))
    assert read_last_checkpoint(str(work)) == str(elsewhere)
    save(work / 'iter_4.pth', 4)
    assert read_last_checkpoint(str(work)) == str(work / 'iter_4.pth')


def test_step_checkpoints_newest_first_without_best_or_temp(tmp_path):
    """Periodic checkpoints by step number (10 before 9), best_* and
    temporary files left out; a custom filename_tmpl is followed."""
    for name, step in [('iter_9.pth', 9), ('iter_10.pth', 10),
                       ('best_mAP_iter_10.pth', 10), ('.iter_11.pth.1.part',
                                                      11)]:
        save(tmp_path / name, step)
    assert [osp.basename(p) for p in step_checkpoints(str(tmp_path))] == [
        'iter_10.pth', 'iter_9.pth'
    ]
    save(tmp_path / 'ckpt-3.pth', 3)
    assert [
        osp.basename(p) for p in step_checkpoints(str(tmp_path),
                                                  ('ckpt-{}.pth', ))
    ] == ['ckpt-3.pth']


def test_checkpoint_problem_names_the_reason(tmp_path):
    """None for a good file; a weights-only dict loads but does not
    resume; an empty and a missing file each get their reason."""
    good = save(tmp_path / 'good.pth', 1)
    assert checkpoint_problem(good, resume=True) is None
    weights = tmp_path / 'weights.pth'
    torch.save(dict(w=torch.zeros(1)), str(weights))
    assert checkpoint_problem(str(weights)) is None
    assert 'not a resumable checkpoint' in checkpoint_problem(
        str(weights), resume=True)
    (tmp_path / 'empty.pth').write_bytes(b'')
    assert checkpoint_problem(str(tmp_path / 'empty.pth')) == \
        'the file is empty'
    assert checkpoint_problem(str(tmp_path / 'missing.pth')) == \
        'no such file'


def test_find_resume_checkpoint_none_fallback_and_error(tmp_path):
    """Nothing to resume: None. Recorded file bad: the newest good one.
    All bad: an error naming each file."""
    assert find_resume_checkpoint(str(tmp_path)) is None
    save(tmp_path / 'iter_1.pth', 1)
    (tmp_path / 'iter_2.pth').write_bytes(b'junk')
    (tmp_path / 'last_checkpoint').write_text('iter_2.pth')
    notes = []
    assert find_resume_checkpoint(str(tmp_path), notes=notes) == str(
        tmp_path / 'iter_1.pth')
    assert str(tmp_path / 'iter_2.pth') in notes[0]
    (tmp_path / 'iter_1.pth').write_bytes(b'')
    with pytest.raises(CheckpointFileError) as e:
        find_resume_checkpoint(str(tmp_path))
    for name in ('iter_1.pth', 'iter_2.pth', '--resume PATH'):
        assert name in str(e.value)


def test_resolve_checkpoints(tmp_path):
    """Auto-resume gets the found path (or resume off when there is none);
    a new run in a used dir stops unless reuse_work_dir."""
    cfg = Config(dict(work_dir=str(tmp_path), resume=True, load_from=None))
    assert resolve_checkpoints(cfg).resume is False
    save(tmp_path / 'iter_3.pth', 3)
    cfg = Config(dict(work_dir=str(tmp_path), resume=True, load_from=None))
    assert resolve_checkpoints(cfg).load_from == str(tmp_path / 'iter_3.pth')

    new_run = Config(dict(work_dir=str(tmp_path), load_from=None))
    with pytest.raises(CheckpointFileError, match='--reuse-work-dir'):
        resolve_checkpoints(new_run)
    assert resolve_checkpoints(new_run, reuse_work_dir=True) is new_run
