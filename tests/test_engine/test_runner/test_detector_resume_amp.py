"""Exact resume under AMP for every head family of SSDADetector.

Per detector of test_ssda_detector_families.py (mmyolo's YOLOv6, YOLOv7,
YOLOv8, YOLOX, RTMDet, PPYOLOE+, mmdet's RetinaNet, FCOS and Faster R-CNN;
YOLOv5 has its own tests in test_ssda_resume.py and
tests/test_tools/test_train_amp.py), the tiny SSDA recipe on fog_shapes
with that detector, shrunk, trains 4 iterations as ``tools/train.py --amp``
merges it (bfloat16 autocast on the CPU; Faster R-CNN refused there and
trained in float32), pseudo-labels on every
step. A second runner resumes that run's iteration-2
checkpoint: student, teacher, student-EMA, optimizer and random states at
iteration 4 must equal the uninterrupted run's exactly.
"""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tests.test_models.test_detectors.test_ssda_detector_families import (
    DETECTORS, set_num_classes, tiny_model_cfg)
from tests.training_helpers import (TINY_SSDA, load_checkpoint,
                                    load_train_tool, make_fog_shapes,
                                    omit_config_text, tensors_equal, train)

MAX_ITERS = 4


#: mmcv's CPU nms takes float32 only: tools/train.py refuses --amp on the
#: CPU for two-stage detectors, which resume here in float32.
NO_CPU_AMP = ('faster_rcnn', )


def merge_amp(cfg):
    """``cfg`` as ``tools/train.py --amp`` merges it."""
    tool = load_train_tool()
    args = tool.parse_args(['config.py', '--amp', '--work-dir', 'w'])
    return tool.merge_args(cfg, args)


def detector_cfg(name, work_dir, resume_from=None):
    cfg = Config.fromfile(TINY_SSDA)
    tiny = tiny_model_cfg(name)
    set_num_classes(tiny.detector, cfg.num_classes)
    cfg.model.detector = tiny.detector
    cfg.model.data_preprocessor = tiny.data_preprocessor
    if 'iters_per_epoch' in tiny.semi_train_cfg:
        cfg.model.semi_train_cfg.iters_per_epoch = 2
    if name == 'faster_rcnn':  # no shared features for the fused forward
        cfg.model.semi_train_cfg.fused_student_forward = False
    if name == 'yolov6':  # as its shipped config: see there
        cfg.model.channels_last = False
    if name in NO_CPU_AMP:
        with pytest.raises(ValueError, match='model.detector.rpn_head'):
            merge_amp(copy.deepcopy(cfg))
    else:
        cfg = merge_amp(cfg)
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{name}@{work_dir}'
    cfg.visualizer.name = f'{name}@{work_dir}'
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = resume_from
    return cfg


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='tests the CPU (bfloat16) path')
@pytest.mark.parametrize('name', sorted(DETECTORS))
def test_amp_training_resumes_exactly(name, tmp_path, monkeypatch):
    make_fog_shapes(tmp_path, num_source=4, num_target=4)
    omit_config_text(monkeypatch)
    monkeypatch.chdir(tmp_path)
    full_dir, resumed_dir = tmp_path / 'full', tmp_path / 'resumed'
    runner = train(detector_cfg(name, str(full_dir)))
    if name not in NO_CPU_AMP:
        assert type(runner.optim_wrapper).__name__ == \
            'NonFiniteSkipAmpOptimWrapper'
        assert runner.optim_wrapper.cast_dtype is torch.bfloat16
    assert runner.optim_wrapper.num_skipped_steps == 0
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        logged = [json.loads(line) for line in f if line.strip()]
    steps = [r for r in logged if 'loss' in r]
    assert len(steps) == MAX_ITERS
    assert all(r['distill.num_pseudo'] > 0 for r in steps)  # distilling
    full = load_checkpoint(full_dir / f'iter_{MAX_ITERS}.pth')
    resumed_dir.mkdir()
    (resumed_dir / 'iter_2.pth').write_bytes(
        (full_dir / 'iter_2.pth').read_bytes())
    train(detector_cfg(name, str(resumed_dir),
                       str(resumed_dir / 'iter_2.pth')))
    resumed = load_checkpoint(resumed_dir / f'iter_{MAX_ITERS}.pth')
    state = full['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())
    # the teacher moved away from the student: resuming it matters
    assert any(not torch.equal(state[k], state['teacher.' + k[8:]])
               for k in state
               if k.startswith('student.') and state[k].is_floating_point())
    for key in ('state_dict', 'ema_state_dict', 'optimizer',
                'random_states'):
        tensors_equal(full[key], resumed[key], key)
    assert full['meta']['ssda_mean_teacher'] == \
        resumed['meta']['ssda_mean_teacher'] == dict(num_steps=MAX_ITERS)
