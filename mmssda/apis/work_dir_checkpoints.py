"""Which checkpoint a run loads or resumes, checked before training.

``tools/train.py`` calls :func:`resolve_checkpoints` on the merged config
before it builds the runner:

- auto-resume (``--resume`` without a path) reads ``last_checkpoint``
  relative to the work dir it is in (an absolute path from an older file
  still works when it exists; a file of the same name inside the work dir
  wins, so a copied work dir resumes from its own checkpoints) and, when
  that file is missing or unreadable, falls back to the newest readable
  ``iter_*``/``epoch_*`` checkpoint in the work dir, with a warning naming
  both files;
- ``--resume PATH`` and ``load_from`` are read once before training; a bad
  file (truncated, empty, not a checkpoint) stops the run with its path,
  the reason and, for ``--resume``, the newest good checkpoint beside it;
- a new run (no ``--resume``) in a work dir that holds checkpoints stops,
  naming the dir and the ways out, unless told to reuse it.

Reading a checkpoint once more costs its load time (about a second for a
few hundred MB) before training starts.
"""
import logging
import os
import os.path as osp
import re
from typing import List, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log


class CheckpointFileError(ValueError):
    """A checkpoint given to load or resume cannot be used; the message
    names the file."""


#: The name ``AtomicCheckpointHook``/``CheckpointHook`` record the latest
#: checkpoint in.
LAST_CHECKPOINT = 'last_checkpoint'


def checkpoint_problem(path: str, resume: bool = False) -> Optional[str]:
    """Why the checkpoint at ``path`` cannot be loaded (``resume``: resumed),
    or None when it can.

    The file is read with MMEngine's ``_load_checkpoint`` on the CPU (the
    same loader ``load_from`` and ``resume`` use); a resumable checkpoint is
    a dict with ``state_dict`` and ``meta`` holding ``epoch`` and ``iter``.
    """
    from mmengine.runner.checkpoint import _load_checkpoint
    if not osp.isfile(path):
        return 'no such file'
    if osp.getsize(path) == 0:
        return 'the file is empty'
    try:
        checkpoint = _load_checkpoint(path, map_location='cpu')
    except Exception as e:  # any reader error means "not loadable"
        return f'it cannot be read ({type(e).__name__}: {e})'
    if not isinstance(checkpoint, dict):
        return ('it is not a checkpoint (a dict), it holds a '
                f'{type(checkpoint).__name__}')
    if resume:
        meta = checkpoint.get('meta')
        if 'state_dict' not in checkpoint or not isinstance(meta, dict) \
                or 'iter' not in meta or 'epoch' not in meta:
            return ('it is not a resumable checkpoint (needs state_dict '
                    'and meta with epoch and iter)')
    return None


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``<work_dir>/last_checkpoint`` names, as a path.

    A relative name is taken relative to ``work_dir``. An absolute path
    (written by MMEngine's ``CheckpointHook``) that points outside
    ``work_dir`` is replaced by the file of the same name in ``work_dir``
    when there is one (a copied or moved work dir), else kept. Returns None
    when there is no ``last_checkpoint`` or it is empty.
    """
    record = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(record):
        return None
    with open(record) as f:
        name = f.read().strip()
    if not name:
        return None
    if not osp.isabs(name):
        return osp.join(work_dir, name)
    inside = osp.join(work_dir, osp.basename(name))
    if osp.abspath(osp.dirname(name)) != osp.abspath(work_dir) \
            and osp.isfile(inside):
        return inside
    return name


def _step_pattern(filename_tmpl: str) -> 're.Pattern':
    before, _, after = filename_tmpl.partition('{}')
    return re.compile(re.escape(before) + r'(\d+)' + re.escape(after) + '$')


def step_checkpoints(directory: str,
                     filename_tmpls: Tuple[str, ...] = (
                         'iter_{}.pth', 'epoch_{}.pth')) -> List[str]:
    """The periodic checkpoints in ``directory``, newest (highest step)
    first; ``best_*`` files (no optimizer state) are not among them."""
    if not osp.isdir(directory):
        return []
    patterns = [_step_pattern(t) for t in filename_tmpls]
    found = []
    for name in os.listdir(directory):
        for pattern in patterns:
            match = pattern.match(name)
            if match and osp.isfile(osp.join(directory, name)):
                found.append((int(match.group(1)), name))
                break
    return [osp.join(directory, name) for _, name in sorted(found)[::-1]]


def find_resume_checkpoint(work_dir: str,
                           filename_tmpls: Tuple[str, ...] = (
                               'iter_{}.pth', 'epoch_{}.pth'),
                           notes: Optional[List[str]] = None
                           ) -> Optional[str]:
    """The checkpoint auto-resume uses in ``work_dir``.

    That is the one ``last_checkpoint`` names (see
    :func:`read_last_checkpoint`) when it is resumable, else the newest
    resumable periodic checkpoint in ``work_dir``, with a warning naming the
    bad and the used file: appended to ``notes`` when given (the caller logs
    it), else logged. Returns None when the work dir holds neither (a fresh
    start).

    Raises:
        CheckpointFileError: checkpoints exist but none can be resumed.
    """
    recorded = read_last_checkpoint(work_dir)
    candidates = [recorded] if recorded else []
    candidates += [
        p for p in step_checkpoints(work_dir, filename_tmpls)
        if not recorded or osp.abspath(p) != osp.abspath(recorded)
    ]
    bad = []
    for path in candidates:
        problem = checkpoint_problem(path, resume=True)
        if problem is None:
            if bad:
                note = ('Auto-resume: ' + '; '.join(
                    f'{p} cannot be used: {why}' for p, why in bad) +
                        f'. Resuming from {path}, the newest good '
                        f'checkpoint in {work_dir}.')
                if notes is None:
                    print_log(note, logger='current', level=logging.WARNING)
                else:
                    notes.append(note)
            return path
        bad.append((path, problem))
    if bad:
        raise CheckpointFileError(
            f'Cannot auto-resume in {work_dir}: no checkpoint there can be '
            'resumed (' + '; '.join(f'{p}: {why}' for p, why in bad) +
            '). Give a good one with --resume PATH, or start a new run with '
            'another --work-dir.')
    return None


def work_dir_checkpoints(work_dir: str) -> List[str]:
    """The files in ``work_dir`` that belong to a run's checkpoints:
    ``last_checkpoint`` and the ``*.pth`` files."""
    if not osp.isdir(work_dir):
        return []
    return sorted(
        osp.join(work_dir, name) for name in os.listdir(work_dir)
        if (name == LAST_CHECKPOINT or name.endswith('.pth'))
        and not name.startswith('.'))


def _checkpoint_filename_tmpls(cfg: Config) -> Tuple[str, ...]:
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    tmpl = hook.get('filename_tmpl')
    return (tmpl, ) if tmpl else ('iter_{}.pth', 'epoch_{}.pth')


def resolve_checkpoints(cfg: Config,
                        reuse_work_dir: bool = False,
                        reuse_option: str = '--reuse-work-dir',
                        notes: Optional[List[str]] = None) -> Config:
    """Check the checkpoint the run starts from and the work dir; set
    ``cfg.load_from`` to the checkpoint auto-resume uses.

    Args:
        cfg (Config): The merged config (``work_dir``, ``resume`` and
            ``load_from`` set as ``tools/train.py`` sets them:
            ``resume=True, load_from=None`` is auto-resume).
        reuse_work_dir (bool): Let a new run (not resuming) start in a work
            dir that holds checkpoints. Defaults to False.
        reuse_option (str): How the user says ``reuse_work_dir``, for the
            message. Defaults to ``'--reuse-work-dir'``.
        notes (list[str], optional): Collects the auto-resume fallback
            warning instead of logging it (``tools/train.py`` logs it through
            the runner's logger, into the run's log file). Defaults to None.

    Returns:
        Config: ``cfg``, with ``load_from`` the checkpoint auto-resume found
        (or ``resume=False`` when there is none).

    Raises:
        CheckpointFileError: a bad checkpoint, or a work dir in use.
    """
    work_dir = cfg.work_dir
    resume = bool(cfg.get('resume', False))
    load_from = cfg.get('load_from', None)
    if resume and load_from is None:
        found = find_resume_checkpoint(work_dir,
                                       _checkpoint_filename_tmpls(cfg), notes)
        if found is None:
            cfg.resume = False
        else:
            cfg.load_from = found
        return cfg
    if load_from is not None and '://' not in str(load_from):
        problem = checkpoint_problem(str(load_from), resume=resume)
        if problem is not None:
            what = '--resume' if resume else 'load_from'
            message = f'{what} {load_from}: {problem}.'
            if resume:
                good = [
                    p for p in step_checkpoints(
                        osp.dirname(osp.abspath(load_from)),
                        _checkpoint_filename_tmpls(cfg))
                    if osp.abspath(p) != osp.abspath(load_from)
                    and checkpoint_problem(p, resume=True) is None
                ]
                if good:
                    message += (f' The newest good checkpoint beside it is '
                                f'{good[0]}.')
            raise CheckpointFileError(message)
    if not resume and not reuse_work_dir:
        existing = work_dir_checkpoints(work_dir)
        if existing:
            shown = ', '.join(osp.basename(p) for p in existing[:5])
            more = f' and {len(existing) - 5} more' if len(existing) > 5 \
                else ''
            raise CheckpointFileError(
                f'The work dir {work_dir} holds the checkpoints of another '
                f'run ({shown}{more}); a new run there would overwrite '
                'them. Continue that run with --resume, start this one in '
                f'a new --work-dir, or pass {reuse_option} to start it '
                'there anyway (files of other names are kept).')
    return cfg
