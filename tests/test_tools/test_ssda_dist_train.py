"""2-process gloo training of the SSDA-YOLO teacher-student model through
tools/train.py --launcher pytorch (issue 6, item 4)."""
import glob
import json
import os
import os.path as osp

from tests.training_helpers import (TINY_SSDA, make_fog_shapes, read_probes,
                                    run_two_process_training,
                                    write_dist_probe_config)


def test_two_process_gloo_ssda_training(tmp_path):
    # 8 source and 8 target pairs, 2 ranks x (2 + 2) pairs per iteration:
    # 2 iterations are one epoch of each domain
    make_fog_shapes(tmp_path, num_source=8, num_target=8)
    config, pythonpath = write_dist_probe_config(
        tmp_path, TINY_SSDA, keep_base_hooks=True)
    work_dir = str(tmp_path / 'work')
    # the fog_shapes configs read data/fog_shapes relative to the cwd
    run_two_process_training(
        config, work_dir, [
            'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=1',
            'randomness.seed=0'
        ],
        cwd=str(tmp_path),
        env_extra=dict(PYTHONPATH=pythonpath))
    probes = read_probes(work_dir)

    seen = [sum(p['batches'], []) for p in probes]
    # each rank saw 2 batches of 2 source and 2 target pairs; the ranks'
    # shards are disjoint and together cover both domains' 16 pairs
    assert all(len(s) == 8 for s in seen)
    assert not set(seen[0]) & set(seen[1])
    assert len(set(seen[0]) | set(seen[1])) == 16
    assert sum(n.startswith('target') for n in seen[0] + seen[1]) == 8

    # DDP keeps the student identical across ranks and the mean-teacher
    # update, a function of the student's history, keeps the teacher
    # identical too, though it is not part of the gradient all-reduce
    assert probes[0]['student_hash'] == probes[1]['student_hash']
    assert probes[0]['teacher_hash'] == probes[1]['teacher_hash']
    assert probes[0]['hash'] == probes[1]['hash']
    # ... and the teacher did not stay a copy of the student
    assert probes[0]['teacher_hash'] != probes[0]['student_hash']

    # only rank 0 got past save_checkpoint's master_only guard (iter_1,
    # iter_2), and only one log file / scalar file was written
    assert (probes[0]['saves'], probes[1]['saves']) == (2, 0)
    assert sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')) == \
        ['iter_1.pth', 'iter_2.pth']
    assert len(glob.glob(osp.join(work_dir, '*', '*.log'))) == 1
    (scalars, ) = glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json'))
    with open(scalars) as f:
        logged = [json.loads(line) for line in f if line.strip()]
    # the distillation branch trained on the teacher's pseudo-labels
    num_pseudo = [r['distill.num_pseudo'] for r in logged if 'loss' in r]
    assert len(num_pseudo) == 2 and min(num_pseudo) > 0
