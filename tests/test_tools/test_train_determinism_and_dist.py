"""tools/train.py: seeded determinism, and 2-process gloo training."""
import glob
import json
import os
import os.path as osp

from tests.conftest import CONFIG_DIR, make_coco_shapes
from tests.training_helpers import (TRAIN, read_probes, run_python,
                                    run_two_process_training,
                                    write_dist_probe_config)

CONFIG = osp.join(CONFIG_DIR, 'tiny_yolov5.py')


def data_options(root):
    return [f'train_dataloader.dataset.data_root={root}/',
            'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
            'test_cfg=None', 'test_dataloader=None', 'test_evaluator=None',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.by_epoch=False']


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
        run_python([TRAIN, CONFIG, '--work-dir', work_dir, '--cfg-options',
                    *data_options(root), *seeded])
        logged.append(losses(work_dir))
    # 4 images, batch 2: 2 iterations, each with loss and its terms
    assert len(logged[0]) == 2 and 'loss_cls' in logged[0][0]
    assert logged[0] == logged[1]


def test_two_process_gloo_training(tmp_path):
    root = str(tmp_path / 'data')
    # 8 images, 2 ranks x batch 2: one epoch is 2 iterations per rank
    make_coco_shapes(root, num_images=8)
    config, pythonpath = write_dist_probe_config(tmp_path, CONFIG)
    work_dir = str(tmp_path / 'work')
    run_two_process_training(
        config, work_dir, [*data_options(root), 'randomness.seed=0'],
        env_extra=dict(PYTHONPATH=pythonpath))
    probes = read_probes(work_dir)
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
