"""tools/train.py --amp on the shipped recipe's wrapper:
``NonFiniteSkipOptimWrapper`` becomes its AMP variant; on the CPU the
student trains under bfloat16 autocast."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from tests.training_helpers import (TINY_SSDA, load_checkpoint,
                                    load_train_tool, make_fog_shapes,
                                    omit_config_text)


def merged(wrapper_type, **extra):
    train = load_train_tool()
    cfg = Config(dict(optim_wrapper=dict(type=wrapper_type, **extra)))
    args = train.parse_args(['config.py', '--amp', '--work-dir', 'w'])
    return train.merge_args(cfg, args).optim_wrapper


@pytest.mark.parametrize('wrapper_type, amp_type', [
    ('mmssda.NonFiniteSkipOptimWrapper',
     'mmssda.NonFiniteSkipAmpOptimWrapper'),
    ('NonFiniteSkipOptimWrapper', 'mmssda.NonFiniteSkipAmpOptimWrapper'),
    ('OptimWrapper', 'AmpOptimWrapper'),
])
def test_amp_maps_the_wrapper_to_its_amp_variant(wrapper_type, amp_type):
    optim_wrapper = merged(wrapper_type)
    assert optim_wrapper.type == amp_type
    assert optim_wrapper.loss_scale == 'dynamic'


def test_amp_keeps_an_amp_wrapper_and_rejects_others():
    kept = merged('AmpOptimWrapper', loss_scale=512.)
    assert (kept.type, kept.loss_scale) == ('AmpOptimWrapper', 512.)
    kept = merged('mmssda.NonFiniteSkipAmpOptimWrapper', dtype='bfloat16')
    assert kept.type == 'mmssda.NonFiniteSkipAmpOptimWrapper'
    with pytest.raises(ValueError, match='optim_wrapper.type'):
        merged('mmengine.ZeroRedundancyOptimizerWrapper')


class AutocastProbe(Hook):
    """Records the dtype of the student's stem output in training."""

    def __init__(self):
        self.dtypes = []

    def before_train(self, runner):
        runner.model.student.backbone.stem.register_forward_hook(
            lambda module, args, out: self.dtypes.append(out.dtype))


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='tests the CPU (bfloat16) path')
def test_train_amp_on_the_ssda_recipe_cpu_bfloat16(tmp_path, monkeypatch):
    make_fog_shapes(tmp_path)
    omit_config_text(monkeypatch)
    monkeypatch.chdir(tmp_path)
    train = load_train_tool()
    runners, probe = [], AutocastProbe()
    build_runner = train.build_runner

    def build_and_probe(cfg):
        runner = build_runner(cfg)
        runner.register_hook(probe)
        runners.append(runner)
        return runner

    monkeypatch.setattr(train, 'build_runner', build_and_probe)
    work_dir = str(tmp_path / 'work')
    train.main([
        TINY_SSDA, '--amp', '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2',
        'experiment_name=train_amp', 'visualizer.name=train_amp'
    ])
    (runner, ) = runners
    wrapper = runner.optim_wrapper
    assert type(wrapper).__name__ == 'NonFiniteSkipAmpOptimWrapper'
    assert wrapper.cast_dtype is torch.bfloat16
    assert runner.iter == 2 and wrapper.num_skipped_steps == 0
    # the student's forward ran under bfloat16 autocast (fused streams:
    # one forward per iteration at least)
    assert len(probe.dtypes) >= 2
    assert set(probe.dtypes) == {torch.bfloat16}
    # the mean teacher counted both steps
    (teacher_hook, ) = [h for h in runner.hooks
                        if type(h).__name__ == 'SSDAMeanTeacherHook']
    assert teacher_hook.num_steps == 2
    checkpoint = load_checkpoint(osp.join(work_dir, 'iter_2.pth'))
    assert all(
        torch.isfinite(v).all() for v in checkpoint['state_dict'].values()
        if v.is_floating_point())
    # bfloat16 needs no loss scaling: the scaler state saved is empty
    assert checkpoint['optimizer']['loss_scaler'] == {}
