"""Per-class adaptive pseudo-label thresholds: the update rule, the
filtering after the head's prediction, bad settings, logging and resume."""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from mmssda.registry import MODELS
from tests.test_models.utils import boost_scores, build_ssda, four_stream_batch
from tests.training_helpers import (TINY_SSDA, load_checkpoint,
                                    make_fog_shapes, omit_config_text,
                                    tensors_equal)

THR_KEY = 'adaptive_score_thr.thresholds'


def detections(scores, labels):
    return InstanceData(
        bboxes=torch.zeros(len(scores), 4),
        scores=torch.tensor(scores, dtype=torch.float32),
        labels=torch.tensor(labels, dtype=torch.long))


def build_thr(**kwargs):
    cfg = dict(
        type='ClassAdaptiveThreshold',
        num_classes=3,
        floor=0.2,
        ceiling=0.8,
        momentum=0.5,
        init=0.5)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_update_rule_by_hand():
    thr = build_thr()
    thr.update([
        detections([0.9, 0.3, 0.6], [0, 0, 1]),
        detections([0.7, 0.25], [0, 1]),
        detections([], []),
    ])
    # class 0: image tops 0.9, 0.7 -> 0.8; class 1: 0.6, 0.25 -> 0.425;
    # class 2: no candidate, unchanged
    torch.testing.assert_close(
        thr.thresholds,
        torch.tensor([0.5 * 0.5 + 0.5 * 0.8, 0.5 * 0.5 + 0.5 * 0.425, 0.5]))
    for _ in range(5):
        thr.update([detections([1.0], [0])])
    assert thr.thresholds[0].item() == pytest.approx(0.8)  # the ceiling
    thr = build_thr(momentum=0.)
    thr.update([detections([0.9], [0])])
    assert thr.thresholds.tolist() == [0.5] * 3


def test_filter_by_class_then_max_per_img():
    thr = build_thr(init=0.5)
    thr.thresholds.copy_(torch.tensor([0.65, 0.45, 0.5]))
    results = detections([0.9, 0.6, 0.5, 0.44], [0, 1, 0, 1])
    kept = thr.filter(results, max_per_img=10)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.6])
    assert kept.labels.tolist() == [0, 1]
    assert len(thr.filter(results, max_per_img=1)) == 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match='floor'):
        build_thr(floor=0.)
    with pytest.raises(ValueError, match='floor'):
        build_thr(floor=0.9, ceiling=0.5)
    with pytest.raises(ValueError, match='init'):
        build_thr(init=0.95)
    with pytest.raises(ValueError, match='momentum'):
        build_thr(momentum=2.)


def adaptive(**kwargs):
    cfg = dict(type='ClassAdaptiveThreshold', floor=0.1, momentum=0.)
    cfg.update(kwargs)
    return cfg


def varied_teacher(model):
    """A teacher whose scores straddle 0.6 for both classes (0.4-0.85)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in model.teacher.bbox_head.head_module.convs_pred:
            conv.weight.copy_(
                torch.randn(conv.weight.shape, generator=gen) * 10)
    boost_scores(model.teacher, obj=1., cls=(0., 0.))


def pseudo_labels(model, inputs, samples):
    pseudo, _ = model.get_pseudo_instances(inputs['target_fake'],
                                           copy.deepcopy(
                                               samples['target_fake']))
    return [p.gt_instances for p in pseudo]


def test_class_thresholds_apply_after_predict_by_feat():
    score_thr = 0.6
    pseudo_cfg = dict(pseudo_label_cfg=dict(score_thr=score_thr))
    fixed = build_ssda(semi_train_cfg=pseudo_cfg)
    model = build_ssda(
        semi_train_cfg=pseudo_cfg, adaptive_score_thr=adaptive())
    # init defaults to the fixed threshold
    assert model.adaptive_score_thr.thresholds.tolist() == pytest.approx(
        [score_thr] * 2)
    for m in (fixed, model):
        varied_teacher(m)
    inputs, samples = four_stream_batch()
    want = pseudo_labels(fixed, inputs, samples)
    got = pseudo_labels(model, inputs, samples)
    # both classes present, some candidates rejected: a real test
    labels = torch.cat([w.labels for w in want])
    assert set(labels.tolist()) == {0, 1}
    for w, g in zip(want, got):
        for key in ('bboxes', 'labels', 'scores'):
            torch.testing.assert_close(g[key], w[key])
    # a class above every score loses its boxes; the other keeps its own
    model.adaptive_score_thr.thresholds[1] = 0.99
    for w, g in zip(want, pseudo_labels(model, inputs, samples)):
        assert g.labels.tolist() == [0] * len(g)
        assert len(g) >= int((w.labels == 0).sum())
        assert (g.scores >= score_thr).all()


def test_thresholds_update_in_training_only_and_are_logged():
    model = build_ssda(adaptive_score_thr=adaptive(momentum=0.5))
    varied_teacher(model)
    inputs, samples = four_stream_batch()
    model.eval()
    pseudo_labels(model, inputs, samples)
    assert model.adaptive_score_thr.thresholds.tolist() == [0.5, 0.5]
    model.train()
    losses = model.loss(inputs, copy.deepcopy(samples))
    thresholds = model.adaptive_score_thr.thresholds
    assert (thresholds != 0.5).all()
    assert losses['distill.score_thr_0'].item() == thresholds[0].item()
    assert losses['distill.score_thr_1'].item() == thresholds[1].item()
    # part of the state dict, so of checkpoints
    state = model.state_dict()
    assert torch.equal(state[THR_KEY], thresholds)
    other = build_ssda(adaptive_score_thr=adaptive(momentum=0.5))
    other.load_state_dict(state)
    assert torch.equal(other.adaptive_score_thr.thresholds, thresholds)


# Resume through MMEngine's Runner: the tiny SSDA recipe (pseudo-label
# threshold 0, so the thresholds start at the floor) with thresholds that
# move fast, 4 iterations in one go against 2 + a resume to 4. The run also
# selects the other distillation options by config (soft distillation,
# images without pseudo-labels ignored), so it shows that they train and
# resume exactly through the Runner.
ADAPTIVE = dict(
    type='ClassAdaptiveThreshold', floor=0.001, ceiling=0.9, momentum=0.3)


def runner_cfg(work_dir, name, resume_from=None):
    cfg = Config.fromfile(TINY_SSDA)
    cfg.model.adaptive_score_thr = ADAPTIVE
    cfg.model.distill_loss = dict(type='YOLOSoftDistillLoss', loss_weight=0.1)
    cfg.model.semi_train_cfg.empty_pseudo_policy = 'ignore'
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name
    cfg.visualizer.name = f'{name}@{work_dir}'
    if resume_from is not None:
        cfg.resume = True
        cfg.load_from = str(resume_from)
    return cfg


def test_thresholds_are_restored_on_resume(tmp_path, monkeypatch):
    omit_config_text(monkeypatch)
    make_fog_shapes(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = Runner.from_cfg(runner_cfg(tmp_path / 'full', 'thr_full'))
    runner.train()
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(scalars) as f:
        logged = [json.loads(line) for line in f if 'loss' in line]
    assert len(logged) == 4 and all(
        r['distill.score_thr_0'] > 0.001 and 'distill.teacher_score_p50' in r
        and r['distill.loss_obj'] > 0 for r in logged)
    full = load_checkpoint(tmp_path / 'full' / 'iter_4.pth')['state_dict']
    half = load_checkpoint(tmp_path / 'full' / 'iter_2.pth')['state_dict']
    # they moved away from the floor and kept moving after iteration 2
    assert (half[THR_KEY] > 0.001).all()
    assert not torch.equal(half[THR_KEY], full[THR_KEY])

    runner = Runner.from_cfg(
        runner_cfg(tmp_path / 'resumed', 'thr_resumed',
                   tmp_path / 'full' / 'iter_2.pth'))
    runner.train()
    resumed = load_checkpoint(tmp_path / 'resumed' /
                              'iter_4.pth')['state_dict']
    torch.testing.assert_close(resumed[THR_KEY], full[THR_KEY], rtol=0,
                               atol=0)
    tensors_equal(full, resumed, 'state_dict')
