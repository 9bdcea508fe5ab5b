"""tools/train.py and tools/test.py as users run them, on a tiny YOLOv5."""
import os
import os.path as osp
import subprocess
import sys

import torch

from tests.conftest import CONFIG_DIR, make_coco_shapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(CONFIG_DIR, 'tiny_yolov5.py')


def data_options(root):
    ann = osp.join(root, 'annotations', 'train.json')
    return [
        f'{loader}.dataset.data_root={root}/'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ] + [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def run_tool(tool, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', tool), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_train_saves_checkpoint_then_resume_and_test(tmp_path):
    root = str(tmp_path / 'data')
    make_coco_shapes(root)
    work_dir = str(tmp_path / 'work')

    # 4 images, batch 2: one epoch is 2 iterations
    run_tool('train.py', CONFIG, '--work-dir', work_dir, '--cfg-options',
             *data_options(root))
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    # torch's weights_only=True default reads it: conftest ran
    # register_all_modules, which allow-lists MMEngine's checkpoint types
    state = torch.load(ckpt, map_location='cpu')
    assert state['meta']['iter'] == 2

    log = run_tool('train.py', CONFIG, '--work-dir', work_dir, '--resume',
                   '--cfg-options', *data_options(root),
                   'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1, iter: 2' in log
    resumed = torch.load(
        osp.join(work_dir, 'epoch_2.pth'), map_location='cpu')
    assert resumed['meta']['iter'] == 4
    # the optimizer state came back: SGD momentum buffers exist after resume
    assert resumed['optimizer']['state']

    log = run_tool('test.py', CONFIG, ckpt, '--work-dir',
                   str(tmp_path / 'test'), '--cfg-options',
                   *data_options(root))
    assert 'coco/bbox_mAP_50' in log
