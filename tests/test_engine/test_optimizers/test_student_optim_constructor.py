import pytest

from mmssda.engine.optimizers import StudentOptimizerConstructor
from tests.test_models.utils import build_ssda


def build_optim_wrapper(model, batch_size_per_gpu=16, **optimizer):
    cfg = dict(
        type='OptimWrapper',
        optimizer=optimizer or dict(
            type='SGD',
            lr=0.01,
            momentum=0.937,
            weight_decay=0.0005,
            nesterov=True))
    cfg['optimizer']['batch_size_per_gpu'] = batch_size_per_gpu
    return StudentOptimizerConstructor(cfg)(model)


def test_student_parameters_only():
    model = build_ssda()
    optim_wrapper = build_optim_wrapper(model)
    in_optimizer = {
        id(p)
        for group in optim_wrapper.optimizer.param_groups
        for p in group['params']
    }
    assert in_optimizer == {id(p) for p in model.student.parameters()}
    assert not in_optimizer & {id(p) for p in model.teacher.parameters()}
    groups = optim_wrapper.optimizer.param_groups
    assert groups[0]['weight_decay'] == pytest.approx(0.0005)
    assert groups[1]['weight_decay'] == 0 and groups[2]['weight_decay'] == 0
    assert groups[0]['nesterov'] and groups[0]['momentum'] == 0.937


def test_weight_decay_scaled_by_batch():
    # 24 per GPU: accumulate round(64 / 24) = 3, scale 24 * 3 / 64
    groups = build_optim_wrapper(build_ssda(), 24).optimizer.param_groups
    assert groups[0]['weight_decay'] == pytest.approx(0.0005 * 72 / 64)


def test_adamw_norm_and_bias_without_weight_decay():
    # AdamW's own default weight decay (0.01) must not reach the norm
    # weights and biases
    groups = build_optim_wrapper(
        build_ssda(), type='AdamW', lr=0.001,
        weight_decay=0.05).optimizer.param_groups
    assert groups[0]['weight_decay'] == pytest.approx(0.05)
    assert groups[1]['weight_decay'] == 0 and groups[2]['weight_decay'] == 0
    assert groups[1]['params'] and groups[2]['params']
