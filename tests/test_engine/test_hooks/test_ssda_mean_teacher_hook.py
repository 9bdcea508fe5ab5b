from unittest.mock import Mock

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmssda.engine.hooks import SSDAMeanTeacherHook


def toy_net():
    return nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))


class ToyTeacherStudent(BaseModel):

    def __init__(self):
        super().__init__()
        self.student = toy_net()
        self.teacher = toy_net()
        self.distill_active = True

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.student(x)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


class ToyDataset(Dataset):
    metainfo = dict()

    def __len__(self):
        return 16

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)))


def make_model():
    model = ToyTeacherStudent()
    gen = torch.Generator().manual_seed(0)
    for net in (model.student, model.teacher):
        with torch.no_grad():
            tensors = list(net.parameters()) + [
                net[1].running_mean, net[1].running_var
            ]
            for t in tensors:
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
    model.student[1].num_batches_tracked.fill_(10)
    return model


def mock_runner(model, it=0, should_update=True, resume=False,
                skipped=False):
    runner = Mock()
    runner.model = model
    runner.iter = it
    runner.optim_wrapper.should_update.return_value = should_update
    runner.optim_wrapper.skipped_last_step = skipped
    runner._resume = resume
    return runner


def float_state(net):
    return {
        k: v.clone()
        for k, v in net.state_dict().items() if v.dtype.is_floating_point
    }


def test_before_train_copies_student_at_iter_0_only():
    model = make_model()
    SSDAMeanTeacherHook().before_train(mock_runner(model, it=5))
    assert not torch.equal(model.teacher[0].weight, model.student[0].weight)
    SSDAMeanTeacherHook().before_train(mock_runner(model, it=0))
    for k, v in model.student.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[k], v), k


def test_update_moves_teacher_by_momentum_buffers_included():
    model = make_model()
    teacher0, student = float_state(model.teacher), float_state(model.student)
    assert 'running_mean' in ''.join(teacher0)
    hook = SSDAMeanTeacherHook(momentum=0.01)
    hook.after_train_iter(mock_runner(model, it=3), 3)
    teacher1 = float_state(model.teacher)
    for k in teacher0:
        expected = 0.99 * teacher0[k] + 0.01 * student[k]
        torch.testing.assert_close(teacher1[k], expected)
        assert not torch.equal(teacher1[k], teacher0[k])
    # integer buffer copied from the student, never averaged
    assert model.teacher[1].num_batches_tracked.item() == 10
    hook.after_train_iter(mock_runner(model, it=4), 4)
    for k in teacher0:
        expected = 0.99 * teacher1[k] + 0.01 * student[k]
        torch.testing.assert_close(model.teacher.state_dict()[k], expected)


def test_update_buffers_false_keeps_teacher_buffers():
    model = make_model()
    mean0 = model.teacher[1].running_mean.clone()
    weight0 = model.teacher[0].weight.clone()
    SSDAMeanTeacherHook(update_buffers=False).after_train_iter(
        mock_runner(model, it=0), 0)
    assert torch.equal(model.teacher[1].running_mean, mean0)
    assert model.teacher[1].num_batches_tracked.item() == 0
    torch.testing.assert_close(
        model.teacher[0].weight,
        0.99 * weight0 + 0.01 * model.student[0].weight)


def test_teacher_keeping_bn_stats_averages_weights_only():
    model = make_model()
    model.teacher_keeps_bn_stats = True
    mean0 = model.teacher[1].running_mean.clone()
    var0 = model.teacher[1].running_var.clone()
    weight0 = model.teacher[0].weight.clone()
    bn_weight0 = model.teacher[1].weight.clone()
    hook = SSDAMeanTeacherHook(momentum=0.01, burn_in_iters=2)
    hook.after_train_iter(mock_runner(model, it=3), 3)
    assert torch.equal(model.teacher[1].running_mean, mean0)
    assert torch.equal(model.teacher[1].running_var, var0)
    torch.testing.assert_close(
        model.teacher[0].weight,
        0.99 * weight0 + 0.01 * model.student[0].weight)
    torch.testing.assert_close(
        model.teacher[1].weight,
        0.99 * bn_weight0 + 0.01 * model.student[1].weight)
    # the end of the burn-in starts the teacher from all of the student
    hook.before_train_iter(mock_runner(model, it=2), 2)
    for k, v in model.student.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[k], v), k


def test_model_told_its_distillation_steps():
    model = make_model()
    hook = SSDAMeanTeacherHook(burn_in_iters=2)
    hook.before_train_iter(mock_runner(model, it=0), 0)
    assert model.distill_steps == 0
    hook.after_train_iter(mock_runner(model, it=1), 1)  # burn-in: no count
    hook.before_train_iter(mock_runner(model, it=2), 2)
    hook.after_train_iter(mock_runner(model, it=2), 2)
    hook.after_train_iter(mock_runner(model, it=3), 3)
    hook.before_train_iter(mock_runner(model, it=4), 4)
    assert model.distill_steps == hook.num_steps == 2


def test_interval_counts_optimizer_steps():
    model = make_model()
    hook = SSDAMeanTeacherHook(interval=2)
    weight0 = model.teacher[0].weight.clone()
    hook.after_train_iter(mock_runner(model, it=0, should_update=False), 0)
    hook.after_train_iter(mock_runner(model, it=1), 1)  # step 1
    assert torch.equal(model.teacher[0].weight, weight0)
    hook.after_train_iter(mock_runner(model, it=2, should_update=False), 2)
    assert torch.equal(model.teacher[0].weight, weight0)
    hook.after_train_iter(mock_runner(model, it=3), 3)  # step 2
    assert not torch.equal(model.teacher[0].weight, weight0)
    assert hook.num_steps == 2


def test_skipped_non_finite_step_leaves_teacher():
    model = make_model()
    hook = SSDAMeanTeacherHook()
    teacher0 = float_state(model.teacher)
    hook.after_train_iter(mock_runner(model, it=0, skipped=True), 0)
    for key, value in float_state(model.teacher).items():
        assert torch.equal(value, teacher0[key]), key
    assert hook.num_steps == 0


def test_burn_in():
    model = make_model()
    hook = SSDAMeanTeacherHook(burn_in_iters=3)
    hook.before_train(mock_runner(model, it=0))
    assert model.distill_active is False
    perturbed = model.student[0].weight.detach() + 1
    with torch.no_grad():
        model.student[0].weight.copy_(perturbed)
    teacher0 = model.teacher[0].weight.clone()
    hook.after_train_iter(mock_runner(model, it=1), 1)
    assert torch.equal(model.teacher[0].weight, teacher0)
    hook.before_train_iter(mock_runner(model, it=3), 3)
    assert model.distill_active is True
    assert torch.equal(model.teacher[0].weight, perturbed)
    # resuming after the burn-in sets the flag again
    model.distill_active = False
    SSDAMeanTeacherHook(burn_in_iters=3).before_train(
        mock_runner(model, it=7))
    assert model.distill_active is True


def test_counter_checkpoint_round_trip():
    hook = SSDAMeanTeacherHook()
    hook.num_steps = 7
    checkpoint = dict(meta=dict())
    hook.before_save_checkpoint(Mock(), checkpoint)
    fresh = SSDAMeanTeacherHook()
    fresh.after_load_checkpoint(
        mock_runner(make_model(), resume=False), checkpoint)
    assert fresh.num_steps == 0
    fresh.after_load_checkpoint(
        mock_runner(make_model(), resume=True), checkpoint)
    assert fresh.num_steps == 7


def test_invalid_arguments():
    with pytest.raises(ValueError):
        SSDAMeanTeacherHook(momentum=1.)
    with pytest.raises(ValueError):
        SSDAMeanTeacherHook(interval=0)
    with pytest.raises(TypeError):
        SSDAMeanTeacherHook().before_train(mock_runner(toy_net()))


def test_gradient_accumulation_with_runner(tmp_path):
    from mmengine.hooks import Hook

    weights = []

    class Record(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            weights.append(runner.model.teacher[0].weight.detach().clone())

    model = make_model()
    student0 = model.student[0].weight.detach().clone()
    # the runner makes its default scope current; restore the previous one
    with DefaultScope.overwrite_default_scope('mmengine'):
        train_with_accumulation(tmp_path, model, Record())
    changed = [not torch.equal(a, b) for a, b in zip(weights, weights[1:])]
    # iterations 0..3; optimizer steps after iterations 1 and 3
    assert changed == [True, False, True]
    # no step after iteration 0: the teacher is still the initial student
    assert torch.equal(weights[0], student0)


def train_with_accumulation(tmp_path, model, record_hook):
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=4,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1), accumulative_counts=2),
        train_cfg=dict(by_epoch=False, max_iters=4),
        custom_hooks=[SSDAMeanTeacherHook(momentum=0.5), record_hook],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmengine')
    runner.train()
