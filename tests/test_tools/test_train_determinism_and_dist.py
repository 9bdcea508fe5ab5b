"""tools/train.py: seeded determinism, and 2-process gloo training."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

from tests.conftest import CONFIG_DIR, make_coco_shapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(CONFIG_DIR, 'tiny_yolov5.py')

# A probe loaded by the launched processes (custom_imports): per rank, the
# images of each batch, a hash of the weights at the end, and which rank
# ran save_checkpoint past its master_only guard.
PROBE = textwrap.dedent('''
    import hashlib, json, os.path as osp
    from mmengine.dist import get_rank
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    from mmssda.registry import HOOKS

    @HOOKS.register_module()
    class DistProbeHook(Hook):
        def __init__(self):
            self.batches, self.saves = [], 0

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.batches.append(sorted(
                osp.basename(s.img_path)
                for s in data_batch['data_samples']))

        def before_save_checkpoint(self, runner, checkpoint):
            self.saves += 1

        def after_train(self, runner):
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            digest = hashlib.sha256()
            # parameters: BN running stats are per rank without SyncBN
            # (DDP broadcasts rank 0's at the start of each forward)
            for k, v in sorted(model.named_parameters()):
                digest.update(k.encode())
                digest.update(v.detach().cpu().numpy().tobytes())
            with open(osp.join(runner.work_dir,
                               f'probe_rank{get_rank()}.json'), 'w') as f:
                json.dump(dict(batches=self.batches, saves=self.saves,
                               hash=digest.hexdigest()), f)
''')


def data_options(root):
    return [f'train_dataloader.dataset.data_root={root}/',
            'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
            'test_cfg=None', 'test_dataloader=None', 'test_evaluator=None',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.by_epoch=False']


def run(args, env_extra=None, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def losses(work_dir):
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    return [{k: v for k, v in r.items() if k.startswith('loss')}
            for r in rows if 'loss' in r]


def test_same_seed_same_losses(tmp_path):
    root = str(tmp_path / 'data')
    make_coco_shapes(root)
    seeded = ['randomness.seed=0', 'randomness.deterministic=True']
    logged = []
    for i in range(2):
        work_dir = str(tmp_path / f'work{i}')
        run([osp.join(REPO, 'tools', 'train.py'), CONFIG, '--work-dir',
             work_dir, '--cfg-options', *data_options(root), *seeded])
        logged.append(losses(work_dir))
    # 4 images, batch 2: 2 iterations, each with loss and its terms
    assert len(logged[0]) == 2 and 'loss_cls' in logged[0][0]
    assert logged[0] == logged[1]


def test_two_process_gloo_training(tmp_path):
    root = str(tmp_path / 'data')
    # 8 images, 2 ranks x batch 2: one epoch is 2 iterations per rank
    make_coco_shapes(root, num_images=8)
    (tmp_path / 'dist_probe.py').write_text(PROBE)
    config = tmp_path / 'dist_probe_cfg.py'
    config.write_text(
        f'_base_ = {CONFIG!r}\n'
        "custom_imports = dict(imports=['dist_probe'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='DistProbeHook')]\n")
    work_dir = str(tmp_path / 'work')
    run(['-m', 'torch.distributed.run', '--nproc_per_node=2', '--standalone',
         osp.join(REPO, 'tools', 'train.py'), str(config), '--launcher',
         'pytorch', '--work-dir', work_dir, '--cfg-options',
         *data_options(root), 'env_cfg.dist_cfg.backend=gloo',
         'randomness.seed=0'],
        env_extra=dict(PYTHONPATH=f'{REPO}:{tmp_path}'))
    probes = []
    for rank in (0, 1):
        with open(osp.join(work_dir, f'probe_rank{rank}.json')) as f:
            probes.append(json.load(f))
    seen = [sum(p['batches'], []) for p in probes]
    # each rank saw 2 batches of 2 main images; the ranks' shards of the
    # epoch are disjoint and together cover the 8 images
    assert all(len(s) == 4 for s in seen)
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 8
    # DDP keeps the parameters identical across ranks
    assert probes[0]['hash'] == probes[1]['hash']
    # only rank 0 got past save_checkpoint's master_only guard (2 iters:
    # iter_1, iter_2), and only one log file / scalar file was written
    assert (probes[0]['saves'], probes[1]['saves']) == (2, 0)
    assert sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')) == \
        ['iter_1.pth', 'iter_2.pth']
    assert len(glob.glob(osp.join(work_dir, '*', '*.log'))) == 1
    assert len(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                  'scalars.json'))) == 1
