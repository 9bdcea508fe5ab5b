"""tools/train.py under checkpoint faults: a real SIGKILL at named points of
a save (the work dir stays resumable at the last complete checkpoint), bad
checkpoints given to --resume, load_from and auto-resume, a new run in a
used work dir, and auto-resume in a copied work dir.

The kill points are set by ``KILL_AT`` in a launcher that patches the
atomic backend or the file removal to ``SIGKILL`` its own process there; the
runs are 1 iteration per epoch (2 images, batch 2) of the tiny YOLOv5."""
import glob
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MessageHub

from mmssda.registry import METRICS
from tests.conftest import CONFIG_DIR, make_coco_shapes
from tests.training_helpers import REPO, TRAIN, omit_config_text

CONFIG = osp.join(CONFIG_DIR, 'tiny_yolov5.py')

LAUNCHER = textwrap.dedent('''
    """tools/train.py that SIGKILLs itself at the point named by KILL_AT:
    partial:NAME   NAME's temporary file (or NAME itself, for a writer
                   without temporary files) half written
    replaced:NAME  NAME renamed into place, before anything else
    remove:NAME    right before NAME is deleted"""
    import os, os.path as osp, runpy, signal, sys

    from mmengine.config import Config
    from mmengine.fileio import LocalBackend

    from mmssda.utils import AtomicLocalBackend
    from tests.test_tools.test_checkpoint_faults import EpochMetric  # noqa

    # yapf formatting of the config is most of a tiny run's time
    Config.pretty_text = property(lambda self: '# config omitted\\n')

    def die():
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


    kind, _, target = os.environ.get('KILL_AT', '').partition(':')
    if kind == 'partial':
        write = AtomicLocalBackend._write_synced

        def half_write(obj, filepath):
            if osp.basename(filepath).startswith('.' + target):
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                die()
            write(obj, filepath)

        AtomicLocalBackend._write_synced = staticmethod(half_write)
        put = LocalBackend.put

        def half_put(self, obj, filepath):  # a non-atomic writer's file
            if osp.basename(str(filepath)) == target:
                with open(filepath, 'wb') as f:
                    f.write(obj[:len(obj) // 2])
                die()
            put(self, obj, filepath)

        LocalBackend.put = half_put
    elif kind == 'replaced':
        put = AtomicLocalBackend.put

        def put_then_die(self, obj, filepath):
            put(self, obj, filepath)
            if osp.basename(str(filepath)) == target:
                die()

        AtomicLocalBackend.put = put_then_die
    elif kind == 'remove':
        remove = LocalBackend.remove

        def die_before_remove(self, filepath):
            if osp.basename(str(filepath)) == target:
                die()
            remove(self, filepath)

        LocalBackend.remove = die_before_remove

    sys.argv = [sys.argv[1]] + sys.argv[2:]
    runpy.run_path(sys.argv[0], run_name='__main__')
''')


@METRICS.register_module(force=True)
class EpochMetric(BaseMetric):
    """``epoch``: the number of training epochs run (a new best at each
    evaluation, also after a resume)."""

    def __init__(self, **kwargs):  # the base config's CocoMetric options
        super().__init__()

    def process(self, data_batch, data_samples):
        self.results.append(0)

    def compute_metrics(self, results):
        return dict(epoch=MessageHub.get_current_instance().get_info(
            'epoch') + 1)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('ckpt_faults') / 'data')
    make_coco_shapes(root, num_images=2, size=64)
    return root


def options(root, max_epochs=3, max_keep=1, save_best=False):
    ann = osp.join(root, 'annotations', 'train.json')
    opts = [
        f'train_dataloader.dataset.data_root={root}/',
        f'train_cfg.max_epochs={max_epochs}',
        f'default_hooks.param_scheduler.max_epochs={max_epochs}',
        f'default_hooks.checkpoint.max_keep_ckpts={max_keep}',
        'randomness.seed=0',
    ]
    if save_best:
        opts += [
            f'val_dataloader.dataset.data_root={root}/',
            f'val_evaluator.ann_file={ann}', 'val_evaluator.type=EpochMetric',
            'val_evaluator._scope_=mmssda',
            'default_hooks.checkpoint.save_best=epoch',
            'default_hooks.checkpoint.rule=greater'
        ]
    else:
        opts += ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    return opts


def launch(tmp_path, args, kill_at=None, timeout=240):
    """Run the launcher; return (returncode, output)."""
    launcher = tmp_path / 'kill_launcher.py'
    launcher.write_text(LAUNCHER)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
               KILL_AT=kill_at or '')
    proc = subprocess.run(
        [sys.executable, str(launcher), TRAIN, CONFIG, *args],
        cwd=str(tmp_path), env=env, capture_output=True, text=True,
        timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def train_main(argv, monkeypatch):
    """tools/train.py's main in this process (no interpreter start-up)."""
    import runpy
    omit_config_text(monkeypatch)
    train = runpy.run_path(TRAIN, run_name='mmssda_train_tool')
    train['main'](argv)


def newest_log(work_dir):
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    with open(logs[-1]) as f:
        return f.read()


def last_recorded(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def loadable(path):
    return torch.load(path, map_location='cpu', weights_only=True)


# (kill point, save_best, epoch of the checkpoint the resume must use,
#  files that must be there and complete after the kill)
KILLS = [
    ('partial:epoch_2.pth', False, 1, ['epoch_1.pth']),
    ('remove:epoch_1.pth', False, 2, ['epoch_1.pth', 'epoch_2.pth']),
    ('partial:best_epoch_epoch_2.pth', True, 2,
     ['epoch_2.pth', 'best_epoch_epoch_1.pth']),
]


@pytest.mark.parametrize('kill_at,save_best,epoch,complete', KILLS,
                         ids=[k[0].replace(':', '-') for k in KILLS])
def test_sigkill_during_save_leaves_a_resumable_work_dir(
        tmp_path, data_root, monkeypatch, kill_at, save_best, epoch,
        complete):
    """SIGKILL at a point of a save with max_keep_ckpts=1: last_checkpoint
    names a complete checkpoint of the expected epoch, the files the save
    had not replaced yet are complete, and --resume continues from that
    epoch to the end."""
    work_dir = str(tmp_path / 'work')
    opts = options(data_root, save_best=save_best)
    code, out = launch(tmp_path,
                       ['--work-dir', work_dir, '--cfg-options', *opts],
                       kill_at=kill_at)
    assert code == -signal.SIGKILL, out[-3000:]

    assert last_recorded(work_dir) == f'epoch_{epoch}.pth'
    for name in complete:
        epoch_in_name = int(re.search(r'(\d+)\.pth$', name).group(1))
        assert loadable(osp.join(
            work_dir, name))['meta']['epoch'] == epoch_in_name, name

    train_main([
        CONFIG, '--work-dir', work_dir, '--resume', '--cfg-options', *opts,
        f'experiment_name=resume_{kill_at.replace(":", "_")}'
    ], monkeypatch)
    log = newest_log(work_dir)
    assert f'resumed epoch: {epoch}, iter: {epoch}' in log
    final = loadable(osp.join(work_dir, 'epoch_3.pth'))
    assert final['meta']['iter'] == 3
    # max_keep_ckpts=1 holds again once the run finished, temp files gone
    names = sorted(os.listdir(work_dir))
    assert [n for n in names if n.startswith('epoch_')] == ['epoch_3.pth']
    assert not [n for n in names if n.endswith('.part')]
    if save_best:
        bests = [n for n in names if n.startswith('best_')]
        assert bests == ['best_epoch_epoch_3.pth'], names
        assert loadable(osp.join(work_dir, bests[0]))['meta']['epoch'] == 3


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory, data_root):
    """A 2-epoch run with every checkpoint kept (epoch_1, epoch_2)."""
    work_dir = str(tmp_path_factory.mktemp('finished') / 'work')
    with pytest.MonkeyPatch.context() as monkeypatch:
        train_main([
            CONFIG, '--work-dir', work_dir, '--cfg-options',
            *options(data_root, max_epochs=2, max_keep=-1),
            'experiment_name=finished'
        ], monkeypatch)
    return work_dir


def copy_run(finished_run, tmp_path):
    work_dir = str(tmp_path / 'copy')
    shutil.copytree(finished_run, work_dir)
    return work_dir


def test_last_checkpoint_is_relative_and_a_copied_dir_resumes_its_own(
        finished_run, tmp_path, data_root, monkeypatch):
    """last_checkpoint holds the name relative to the work dir; auto-resume
    in a copy of the work dir uses the copy's checkpoint, also when the
    record is an absolute path into the original (MMEngine's format)."""
    assert last_recorded(finished_run) == 'epoch_2.pth'
    from mmssda.apis import find_resume_checkpoint
    work_dir = copy_run(finished_run, tmp_path)
    assert find_resume_checkpoint(work_dir) == osp.join(
        work_dir, 'epoch_2.pth')
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(finished_run, 'epoch_2.pth'))
    assert find_resume_checkpoint(work_dir) == osp.join(
        work_dir, 'epoch_2.pth')
    original = sorted(os.listdir(finished_run))

    train_main([
        CONFIG, '--work-dir', work_dir, '--resume', '--cfg-options',
        *options(data_root, max_epochs=3, max_keep=-1),
        'experiment_name=resume_copy'
    ], monkeypatch)
    assert f'Load checkpoint from {work_dir}/epoch_2.pth' in newest_log(
        work_dir)
    assert loadable(osp.join(work_dir, 'epoch_3.pth'))['meta']['iter'] == 3
    assert sorted(os.listdir(finished_run)) == original


def test_auto_resume_falls_back_to_the_newest_good_checkpoint(
        finished_run, tmp_path, data_root, monkeypatch):
    """A truncated checkpoint named by last_checkpoint: auto-resume warns,
    naming it and the file it uses instead, and resumes from that one."""
    work_dir = copy_run(finished_run, tmp_path)
    bad = osp.join(work_dir, 'epoch_2.pth')
    with open(bad, 'r+b') as f:
        f.truncate(osp.getsize(bad) // 2)
    good = osp.join(work_dir, 'epoch_1.pth')
    train_main([
        CONFIG, '--work-dir', work_dir, '--resume', '--cfg-options',
        *options(data_root, max_epochs=2, max_keep=-1),
        'experiment_name=resume_fallback'
    ], monkeypatch)
    log = newest_log(work_dir)
    assert f'{bad} cannot be used: it cannot be read' in log
    assert f'Resuming from {good}, the newest good checkpoint' in log
    assert 'resumed epoch: 1, iter: 1' in log
    assert loadable(bad)['meta']['iter'] == 2  # written again, complete


@pytest.mark.parametrize('content', [b'', b'not a checkpoint', 'half'])
def test_bad_resume_file_is_named_with_the_good_one_beside_it(
        finished_run, tmp_path, data_root, monkeypatch, content):
    """--resume on an empty, garbage or truncated file stops before
    training with the file's path and the newest good checkpoint."""
    work_dir = copy_run(finished_run, tmp_path)
    bad = osp.join(work_dir, 'epoch_2.pth')
    if content == 'half':
        with open(bad, 'r+b') as f:
            f.truncate(osp.getsize(bad) // 2)
    else:
        with open(bad, 'wb') as f:
            f.write(content)
    before = sorted(os.listdir(work_dir))
    with pytest.raises(SystemExit) as e:
        train_main([
            CONFIG, '--work-dir', work_dir, '--resume', bad,
            '--cfg-options', *options(data_root)
        ], monkeypatch)
    message = str(e.value)
    assert f'--resume {bad}:' in message
    assert osp.join(work_dir, 'epoch_1.pth') in message
    assert sorted(os.listdir(work_dir)) == before


def test_bad_load_from_is_named(tmp_path, data_root, monkeypatch):
    """load_from naming a file that is not a checkpoint stops the run with
    the file's path."""
    bad = tmp_path / 'weights.pth'
    torch.save([1, 2, 3], str(bad))
    with pytest.raises(SystemExit) as e:
        train_main([
            CONFIG, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
            *options(data_root), f'load_from={bad}'
        ], monkeypatch)
    assert f'load_from {bad}: it is not a checkpoint' in str(e.value)


def test_new_run_in_a_used_work_dir_stops_and_keeps_the_files(
        finished_run, tmp_path, data_root, monkeypatch):
    """Without --resume, a work dir holding checkpoints stops the run with
    the dir and the ways out, deleting and changing nothing;
    --reuse-work-dir starts it."""
    work_dir = copy_run(finished_run, tmp_path)
    files = {
        n: os.path.getmtime(osp.join(work_dir, n))
        for n in os.listdir(work_dir)
    }
    with pytest.raises(SystemExit) as e:
        train_main([
            CONFIG, '--work-dir', work_dir, '--cfg-options',
            *options(data_root, max_epochs=1)
        ], monkeypatch)
    message = str(e.value)
    for text in (work_dir, 'epoch_1.pth', '--resume', '--work-dir',
                 '--reuse-work-dir'):
        assert text in message, text
    assert {
        n: os.path.getmtime(osp.join(work_dir, n))
        for n in os.listdir(work_dir)
    } == files

    train_main([
        CONFIG, '--work-dir', work_dir, '--reuse-work-dir', '--cfg-options',
        *options(data_root, max_epochs=1, max_keep=-1),
        'experiment_name=reuse'
    ], monkeypatch)
    assert loadable(osp.join(work_dir, 'epoch_1.pth'))['meta']['iter'] == 1
    assert loadable(osp.join(work_dir, 'epoch_2.pth'))['meta']['iter'] == 2
