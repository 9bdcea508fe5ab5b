"""Helpers shared by the training tests: checkpoint comparison, tiny runs
in-process and through ``tools/train.py`` in subprocesses (2-process gloo
runs included)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from tests.conftest import CONFIG_DIR

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(REPO, 'tools', 'train.py')
#: The SSDA-YOLO fog_shapes recipe shrunk for CPU tests (reads
#: data/fog_shapes relative to the working directory).
TINY_SSDA = osp.join(CONFIG_DIR, 'tiny_ssda_fog_shapes.py')


def load_train_tool():
    """``tools/train.py`` as a module (its ``parse_args``, ``merge_args``,
    ``main``)."""
    spec = importlib.util.spec_from_file_location('mmssda_train_tool', TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(cfg):
    """Build a runner from ``cfg``, train it, return it."""
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def omit_config_text(monkeypatch):
    """Formatting the full mmyolo config with yapf (log, dump, checkpoint
    meta) takes most of a tiny run's time; the tests do not read it."""
    monkeypatch.setattr(Config, 'pretty_text',
                        property(lambda self: '# config omitted in tests\n'))


def make_fog_shapes(root, num_source=6, num_target=6):
    """A tiny clear -> fog set in ``root/data/fog_shapes`` (the path the
    fog_shapes configs read relative to the working directory)."""
    from mmssda.datasets import generate_fog_shapes
    generate_fog_shapes(
        osp.join(str(root), 'data', 'fog_shapes'),
        seed=0,
        num_source=num_source,
        num_target=num_target,
        num_val=4,
        img_size=96)


def load_checkpoint(path):
    return torch.load(path, map_location='cpu', weights_only=True)


def tensors_equal(a, b, path=''):
    """Assert two nested checkpoint entries are identical."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            tensors_equal(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            tensors_equal(x, y, f'{path}[{i}]')
    else:
        assert a == b, path


def run_python(args, cwd=REPO, env_extra=None, timeout=300):
    """Run ``python *args`` with the repository importable; return its
    output, failing the test with the output's tail if it fails."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


# A probe loaded by launched training processes (custom_imports): per rank,
# the images of each batch, hashes of the weights at the end (the whole
# model's parameters and, for a teacher-student model, the teacher's), and
# how often the rank ran save_checkpoint past its master_only guard.
DIST_PROBE = textwrap.dedent('''
    import hashlib, json, os.path as osp
    from mmengine.dist import get_rank
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    from mmssda.registry import HOOKS


    def image_names(data_samples):
        """Main image names of a batch; a multi-stream batch (dict of
        per-stream lists, None where a pair has no such stream) counts the
        real image of each pair (its fake shares the image path)."""
        if isinstance(data_samples, dict):
            data_samples = [
                s for stream, samples in data_samples.items()
                if stream.endswith('_real') for s in samples
                if s is not None]
        return sorted(osp.basename(s.img_path) for s in data_samples)


    def parameter_hash(module):
        # parameters only: the buffers are compared by the tests that need
        # them (test_ssda_dist_train.py)
        digest = hashlib.sha256()
        for k, v in sorted(module.named_parameters()):
            digest.update(k.encode())
            digest.update(v.detach().cpu().numpy().tobytes())
        return digest.hexdigest()


    @HOOKS.register_module()
    class DistProbeHook(Hook):
        def __init__(self):
            self.batches, self.saves = [], 0

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.batches.append(image_names(data_batch['data_samples']))

        def before_save_checkpoint(self, runner, checkpoint):
            self.saves += 1

        def after_train(self, runner):
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            probe = dict(batches=self.batches, saves=self.saves,
                         hash=parameter_hash(model))
            if hasattr(model, 'teacher'):
                probe['teacher_hash'] = parameter_hash(model.teacher)
                probe['student_hash'] = parameter_hash(model.student)
            with open(osp.join(runner.work_dir,
                               f'probe_rank{get_rank()}.json'), 'w') as f:
                json.dump(probe, f)
''')


def write_dist_probe_config(tmp_path, base_config, keep_base_hooks=False):
    """Write the probe module and a config: ``base_config`` with the probe
    hook added to its custom hooks (``keep_base_hooks``) or replacing them.
    Return the config's path and the PYTHONPATH that imports the probe."""
    (tmp_path / 'dist_probe.py').write_text(DIST_PROBE)
    config = tmp_path / 'dist_probe_cfg.py'
    base_hooks = '*_base_.custom_hooks, ' if keep_base_hooks else ''
    config.write_text(
        f'_base_ = {base_config!r}\n'
        "custom_imports = dict(imports=['dist_probe'], "
        'allow_failed_imports=False)\n'
        f"custom_hooks = [{base_hooks}dict(type='DistProbeHook')]\n")
    return str(config), f'{REPO}:{tmp_path}'


def run_two_process_training(config, work_dir, cfg_options, cwd=REPO,
                             env_extra=None, timeout=300):
    """``tools/train.py --launcher pytorch`` on 2 CPU processes (gloo)."""
    return run_python(
        ['-m', 'torch.distributed.run', '--nproc_per_node=2', '--standalone',
         TRAIN, config, '--launcher', 'pytorch', '--work-dir', work_dir,
         '--cfg-options', *cfg_options, 'env_cfg.dist_cfg.backend=gloo'],
        cwd=cwd, env_extra=env_extra, timeout=timeout)


def read_probes(work_dir, world_size=2):
    probes = []
    for rank in range(world_size):
        with open(osp.join(work_dir, f'probe_rank{rank}.json')) as f:
            probes.append(json.load(f))
    return probes
