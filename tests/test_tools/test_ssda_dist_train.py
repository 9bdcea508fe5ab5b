"""2-process gloo training of the SSDA-YOLO teacher-student model through
tools/train.py --launcher pytorch, without SyncBN: the teacher's and
student-EMA's BatchNorm statistics stay identical on all ranks."""
import glob
import json
import os
import os.path as osp
import textwrap

from tests.training_helpers import (TINY_SSDA, make_fog_shapes, read_probes,
                                    run_two_process_training,
                                    write_dist_probe_config)

# Per rank, hashes of the floating-point buffers (BatchNorm running
# statistics) of student, teacher and student-EMA at the end of training.
BUFFER_PROBE = textwrap.dedent('''
    import hashlib, json, os.path as osp
    from mmengine.dist import get_rank
    from mmengine.hooks import Hook
    from mmengine.model import is_model_wrapper
    from mmssda.registry import HOOKS


    def buffer_hash(module):
        digest = hashlib.sha256()
        for k, v in sorted(module.named_buffers()):
            if v.dtype.is_floating_point:
                digest.update(k.encode())
                digest.update(v.detach().cpu().numpy().tobytes())
        return digest.hexdigest()


    @HOOKS.register_module()
    class BufferProbeHook(Hook):
        priority = 'LOWEST'

        def before_train(self, runner):
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            self.initial = buffer_hash(model.teacher)

        def after_train(self, runner):
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            ema = next(h for h in runner.hooks
                       if type(h).__name__ == 'StudentEMAHook')
            probe = dict(initial_teacher=self.initial,
                         teacher=buffer_hash(model.teacher),
                         student=buffer_hash(model.student),
                         ema=buffer_hash(ema.ema_model.module))
            with open(osp.join(runner.work_dir,
                               f'buffers_rank{get_rank()}.json'), 'w') as f:
                json.dump(probe, f)
''')


def test_two_process_gloo_ssda_training(tmp_path):
    # 8 source and 8 target pairs, 2 ranks x (2 + 2) pairs per iteration:
    # 2 iterations are one epoch of each domain
    make_fog_shapes(tmp_path, num_source=8, num_target=8)
    probe_config, pythonpath = write_dist_probe_config(
        tmp_path, TINY_SSDA, keep_base_hooks=True)
    (tmp_path / 'buffer_probe.py').write_text(BUFFER_PROBE)
    config = tmp_path / 'buffer_probe_cfg.py'
    config.write_text(
        f'_base_ = {probe_config!r}\n'
        "custom_imports = dict(imports=['dist_probe', 'buffer_probe'], "
        'allow_failed_imports=False)\n'
        'custom_hooks = [*_base_.custom_hooks, '
        "dict(type='BufferProbeHook')]\n")
    work_dir = str(tmp_path / 'work')
    # the fog_shapes configs read data/fog_shapes relative to the cwd; no
    # SyncBN (on the CPU tools/train.py turns it off anyway): each rank's
    # BatchNorm statistics follow its own batches
    run_two_process_training(
        str(config), work_dir, [
            'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=1',
            'randomness.seed=0', 'model.detector.use_syncbn=False'
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

    # MMEngine's DDP does not broadcast buffers: SSDAMeanTeacherHook
    # averages the student's BN statistics over the ranks after each step,
    # so teacher, student and student-EMA buffers are identical on both
    # ranks, and the teacher's statistics did move
    buffers = []
    for rank in range(2):
        with open(osp.join(work_dir, f'buffers_rank{rank}.json')) as f:
            buffers.append(json.load(f))
    for part in ('teacher', 'student', 'ema'):
        assert buffers[0][part] == buffers[1][part], part
    assert buffers[0]['teacher'] != buffers[0]['initial_teacher']

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
