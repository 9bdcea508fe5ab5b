import os
import os.path as osp
from contextlib import contextmanager
from typing import List, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from mmssda.registry import HOOKS
from mmssda.utils import AtomicLocalBackend


class _DeferredRemovalBackend:
    """A file backend whose ``remove``/``rmtree`` can be held back.

    Everything else is the wrapped backend's. Inside :meth:`deferred` the
    removals are queued; leaving the outermost ``deferred`` block normally
    runs them, except for the paths in ``keep()`` (checkpoints still in
    use); leaving it through an exception drops them (nothing is deleted
    after a failed save).
    """

    def __init__(self, backend, keep) -> None:
        self._backend = backend
        self._keep = keep
        self._depth = 0
        self._queued: List[tuple] = []

    def __getattr__(self, name):
        if name.startswith('__') or name == '_backend':
            raise AttributeError(name)  # copy/pickle before __init__
        return getattr(self._backend, name)

    def queued(self) -> List[str]:
        """The paths whose removal is held back."""
        return [path for _, path in self._queued]

    def remove(self, path) -> None:
        self._removal(self._backend.remove, path)

    def rmtree(self, path) -> None:
        self._removal(self._backend.rmtree, path)

    def _removal(self, remove, path) -> None:
        if self._depth:
            self._queued.append((remove, path))
        else:
            remove(path)

    @contextmanager
    def deferred(self):
        self._depth += 1
        try:
            yield
        except BaseException:
            if self._depth == 1:
                self._queued.clear()
            raise
        finally:
            self._depth -= 1
        if self._depth == 0:
            queued, self._queued = self._queued, []
            keep = {osp.abspath(p) for p in self._keep() if p}
            for remove, path in queued:
                if osp.abspath(path) not in keep and (
                        self._backend.isfile(path)
                        or self._backend.isdir(path)):
                    remove(path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """MMEngine's :class:`~mmengine.hooks.CheckpointHook` made safe against
    a kill at any instant of a save.

    Same arguments and file names as ``CheckpointHook``; what changes is the
    order and atomicity of the file operations:

    1. Each checkpoint (periodic and ``best_*``) is written through
       :class:`~mmssda.utils.AtomicLocalBackend`: to a hidden temporary file
       in the same directory, flushed, ``fsync``-ed and renamed over the
       target with ``os.replace`` (the directory is ``fsync``-ed too), so a
       checkpoint file is either absent or complete.
    2. ``last_checkpoint`` is written the same way after the checkpoint is
       complete. It holds the file name relative to the work dir
       (``iter_40.pth``), so a work dir that is moved or copied resumes from
       its own checkpoints (``tools/train.py --resume`` reads it relative to
       the work dir it is in).
    3. Checkpoints beyond ``max_keep_ckpts`` and the previous ``best_*`` are
       deleted only after the new checkpoint and ``last_checkpoint`` are
       complete; with ``save_best``, after the new best, the periodic
       checkpoint that records it and ``last_checkpoint``.

    A kill therefore leaves, at any point, a ``last_checkpoint`` that names a
    complete checkpoint (the previous one until the new one is finished), at
    worst with one checkpoint more than ``max_keep_ckpts`` (or the previous
    best beside the new one) and a stale ``.*.part`` temporary file. Each
    checkpoint records the names it has still to delete (runtime info
    ``pending_ckpt_removals``): a run resumed from it deletes them, and the
    temporary files, before training. A best checkpoint read back from a
    resumed run that points into another directory (the work dir was copied)
    is looked for in this run's directory instead, so the original's files
    are never deleted.

    Atomic writes need a local ``out_dir``; with ``backend_args`` or a remote
    ``out_dir`` the hook writes through that backend as ``CheckpointHook``
    does, keeping the order of item 3.

    Example:
        >>> default_hooks = dict(
        >>>     checkpoint=dict(
        >>>         type='AtomicCheckpointHook', by_epoch=False,
        >>>         interval=1000, max_keep_ckpts=3,
        >>>         save_best='student/pascal_voc/mAP', rule='greater'))
    """

    #: Runtime-info key of the checkpoint names still to delete.
    pending_key = 'pending_ckpt_removals'

    def before_train(self, runner) -> None:
        """Choose the atomic backend for a local ``out_dir``, run
        ``CheckpointHook.before_train``, point the resumed best
        checkpoint(s) into this run's directory, then delete the stale
        temporary files and the removals a resumed checkpoint left
        pending."""
        out_dir = runner.work_dir if self.out_dir is None else self.out_dir
        if self.backend_args is None and self.file_client_args is None \
                and '://' not in str(out_dir):
            self.backend_args = dict(backend=AtomicLocalBackend.name)
        super().before_train(runner)
        self.file_backend = _DeferredRemovalBackend(self.file_backend,
                                                    self._checkpoints_in_use)
        if self.save_best is not None:
            self._rebase_best_checkpoints(runner)
        if is_main_process():
            if self._atomic:
                self._remove_stale_temp_files(runner)
            self._remove_pending(runner)

    @property
    def _atomic(self) -> bool:
        return (self.backend_args or {}).get('backend') == \
            AtomicLocalBackend.name

    def _checkpoints_in_use(self) -> List[Optional[str]]:
        paths = [self.last_ckpt]
        if self.save_best is not None:
            if len(self.key_indicators) == 1:
                paths.append(self.best_ckpt_path)
            else:
                paths.extend(self.best_ckpt_path_dict.values())
        return paths

    def _remove_stale_temp_files(self, runner) -> None:
        if not osp.isdir(self.out_dir):
            return
        for name in sorted(os.listdir(self.out_dir)):
            path = osp.join(self.out_dir, name)
            if AtomicLocalBackend.is_temp_file(name) and osp.isfile(path):
                os.remove(path)
                runner.logger.info(
                    f'Removed {path}, the temporary file of a checkpoint '
                    'save that did not finish.')

    def _remove_pending(self, runner) -> None:
        """Delete the outdated checkpoints a resumed checkpoint recorded
        (a kill came before their removal)."""
        names = runner.message_hub.runtime_info.get(self.pending_key) or []
        runner.message_hub.update_info(self.pending_key, [])
        in_use = {osp.abspath(p) for p in self._checkpoints_in_use() if p}
        for name in names:
            path = self.file_backend.join_path(self.out_dir,
                                               osp.basename(name))
            if osp.abspath(path) in in_use:
                continue
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):
                self.file_backend.rmtree(path)
            else:
                continue
            runner.logger.info(
                f'Removed {path}, an outdated checkpoint the previous run '
                'was killed before deleting.')

    def _rebase_best_checkpoints(self, runner) -> None:
        """Point best checkpoint paths from another directory (the work dir
        this one was copied from) at the same name in ``self.out_dir``."""

        def rebased(path):
            if not path or osp.dirname(osp.abspath(path)) == osp.abspath(
                    self.out_dir):
                return path
            return self.file_backend.join_path(self.out_dir,
                                               osp.basename(path))

        if len(self.key_indicators) == 1:
            self.best_ckpt_path = rebased(self.best_ckpt_path)
            if self.best_ckpt_path:
                runner.message_hub.update_info('best_ckpt',
                                               self.best_ckpt_path)
        else:
            for key, path in self.best_ckpt_path_dict.items():
                self.best_ckpt_path_dict[key] = rebased(path)
                if path:
                    runner.message_hub.update_info(
                        f'best_ckpt_{key}', self.best_ckpt_path_dict[key])

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Save the checkpoint of ``step``, then ``last_checkpoint``, then
        delete the checkpoints beyond ``max_keep_ckpts``."""
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        # recorded in the checkpoint: a resume deletes them if a kill came
        # first
        runner.message_hub.update_info(self.pending_key, [
            self.filename_tmpl.format(s) for s in outdated
        ] + [osp.basename(p) for p in self.file_backend.queued()])

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)

        # Model parallel-like training saves from every rank; only the main
        # process records and deletes files.
        if not is_main_process():
            return
        self._write_last_checkpoint(runner)
        with self.file_backend.deferred():
            for old_step in outdated:
                path = self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(old_step))
                self.file_backend.remove(path)

    def _write_last_checkpoint(self, runner) -> None:
        """Record ``self.last_ckpt`` in ``<work_dir>/last_checkpoint``,
        relative to the work dir when it is inside it."""
        path = str(self.last_ckpt)
        work_dir = osp.abspath(runner.work_dir)
        inside = osp.commonpath([work_dir, osp.abspath(path)]) == work_dir
        if '://' not in path and inside:
            path = osp.relpath(osp.abspath(path), work_dir)
        AtomicLocalBackend().put_text(path,
                                      osp.join(work_dir, 'last_checkpoint'))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """``CheckpointHook._save_best_checkpoint`` with the removal of the
        previous best held back until the new best and the periodic
        checkpoint that records it are complete."""
        with self.file_backend.deferred():
            super()._save_best_checkpoint(runner, metrics)
