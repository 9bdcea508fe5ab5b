"""Soft distillation for YOLOv5 and YOLOv8 heads: the terms by hand,
shape checks, cell alignment of paired images and the detector's use."""
import copy
import math

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmssda.models.losses import soft_bce
from mmssda.registry import MODELS
from tests.test_models.utils import (IMG_SIZE, boost_scores, build_ssda,
                                     data_sample, four_stream_batch,
                                     freeze_batch_norm, tiny_detector_cfg,
                                     total, yolov8_tiny_cfg)

SOFT = dict(type='YOLOSoftDistillLoss', loss_weight=0.5, obj_weight=2.0,
            cls_weight=3.0, bbox_weight=4.0, conf_thr=0.3)
#: SOFT for a head without objectness (an obj_weight is refused there).
SOFT_CLS = {k: v for k, v in SOFT.items() if k != 'obj_weight'}


def kl(t_logit, s_logit):
    """Bernoulli KL(sigmoid(t) || sigmoid(s)) with the math module."""
    t = 1 / (1 + math.exp(-t_logit))
    s = 1 / (1 + math.exp(-s_logit))
    return t * math.log(t / s) + (1 - t) * math.log((1 - t) / (1 - s))


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_soft_bce_is_kl_and_zero_at_equality():
    s = torch.tensor([[-2.0, 0.0], [1.5, 3.0]], requires_grad=True)
    t = torch.tensor([[0.5, -1.0], [1.5, -3.0]])
    out = soft_bce(s, t)
    for i in range(2):
        for j in range(2):
            assert out[i, j].item() == pytest.approx(
                kl(t[i, j].item(), s[i, j].item()), abs=1e-6)
    assert out[1, 0].item() == pytest.approx(0, abs=1e-7)
    assert (out >= 0).all()
    torch.testing.assert_close(soft_bce(t, t), torch.zeros(2, 2))
    # the gradient of the soft-target BCE: sigmoid(s) - sigmoid(t)
    out.sum().backward()
    torch.testing.assert_close(s.grad, s.detach().sigmoid() - t.sigmoid())


def build_head(cfg):
    with DefaultScope.overwrite_default_scope('mmssda'):
        detector = MODELS.build(cfg)
    return detector.bbox_head


def yolov5_outs(seed, sizes=((2, 2), (1, 1), (1, 1)), num_anchors=3,
                num_classes=2):
    gen = torch.Generator().manual_seed(seed)
    cls, bbox, obj = [], [], []
    for h, w in sizes:
        cls.append(torch.randn(1, num_anchors * num_classes, h, w,
                               generator=gen) * 2)
        bbox.append(torch.randn(1, num_anchors * 4, h, w, generator=gen))
        obj.append(torch.randn(1, num_anchors, h, w, generator=gen) * 2)
    return cls, bbox, obj


def meta(size=IMG_SIZE):
    return dict(batch_input_shape=(size, size), img_shape=(size, size))


def test_yolov5_terms_by_hand():
    head = build_head(tiny_detector_cfg())
    loss = MODELS.build(SOFT)
    student = yolov5_outs(0)
    teacher = yolov5_outs(1)
    gt = [InstanceData(bboxes=torch.tensor([[8., 8., 40., 48.]]),
                       labels=torch.tensor([1]))]
    out = loss(head, student, teacher, gt, [meta()])
    assert set(out) == {'loss_cls', 'loss_obj', 'loss_bbox'}

    level_weights = head.obj_level_weights  # [4.0, 1.0, 0.4]
    obj, cls_terms, num_confident = 0., 0., 0
    for level, (s_cls, t_cls, s_obj, t_obj) in enumerate(
            zip(student[0], teacher[0], student[2], teacher[2])):
        _, _, h, w = s_obj.shape
        level_obj = []
        for a in range(3):
            for y in range(h):
                for x in range(w):
                    to, so = t_obj[0, a, y, x].item(), s_obj[0, a, y,
                                                             x].item()
                    level_obj.append(kl(to, so))
                    # anchor a's classes are channels 2a, 2a + 1
                    t_c = [t_cls[0, 2 * a + c, y, x].item() for c in (0, 1)]
                    s_c = [s_cls[0, 2 * a + c, y, x].item() for c in (0, 1)]
                    score = sigmoid(to) * max(sigmoid(v) for v in t_c)
                    if score >= 0.3:
                        num_confident += 1
                        cls_terms += sum(kl(t, s) for t, s in zip(t_c, s_c))
        obj += level_weights[level] * sum(level_obj) / len(level_obj)
    assert 0 < num_confident < 18  # some priors confident, some not
    obj_weight = head.loss_obj.loss_weight
    cls_weight = head.loss_cls.loss_weight
    assert out['loss_obj'].item() == pytest.approx(
        0.5 * 2.0 * obj_weight * obj, rel=1e-5)
    assert out['loss_cls'].item() == pytest.approx(
        0.5 * 3.0 * cls_weight * cls_terms / (2 * num_confident), rel=1e-5)
    hard = head.loss_by_feat(*student, gt, [meta()])
    assert hard['loss_bbox'].item() > 0
    torch.testing.assert_close(out['loss_bbox'],
                               0.5 * 4.0 * hard['loss_bbox'])

    # zero when the student equals the teacher (boxes aside)
    same = loss(head, teacher, teacher, gt, [meta()])
    assert same['loss_obj'].item() == pytest.approx(0, abs=1e-7)
    assert same['loss_cls'].item() == pytest.approx(0, abs=1e-7)


def test_no_confident_prior_gives_zero_cls_with_graph():
    head = build_head(tiny_detector_cfg())
    loss = MODELS.build(dict(SOFT, conf_thr=1.0))
    student = yolov5_outs(0)
    for level in student:
        for x in level:
            x.requires_grad_()
    out = loss(head, student, yolov5_outs(1), [InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))],
               [meta()])
    assert out['loss_cls'].item() == 0 and out['loss_cls'].grad_fn
    assert out['loss_obj'].item() > 0


def test_yolov8_terms_by_hand():
    head = build_head(yolov8_tiny_cfg())
    loss = MODELS.build(SOFT_CLS)
    gen = torch.Generator().manual_seed(0)
    sizes = [(IMG_SIZE // s, IMG_SIZE // s) for s in (8, 16, 32)]
    reg_max = head.head_module.reg_max

    def outs(train):
        cls = [torch.randn(2, 2, h, w, generator=gen) * 2 for h, w in sizes]
        bbox = [torch.rand(2, 4, h, w, generator=gen) * 3 for h, w in sizes]
        if not train:
            return cls, bbox
        dist = [torch.randn(2, h * w, 4, reg_max, generator=gen)
                for h, w in sizes]
        return cls, bbox, dist

    student, teacher = outs(True), outs(False)
    gt = [InstanceData(bboxes=torch.tensor([[8., 8., 40., 48.]]),
                       labels=torch.tensor([1])),
          InstanceData(bboxes=torch.tensor([[20., 4., 60., 30.]]),
                       labels=torch.tensor([0]))]
    metas = [meta(), meta()]
    out = loss(head, student, teacher, gt, metas)
    assert set(out) == {'loss_cls', 'loss_bbox', 'loss_dfl'}
    s = torch.cat([c.double().flatten() for c in student[0]])
    t = torch.cat([c.double().flatten() for c in teacher[0]])
    p, q = t.sigmoid(), s.sigmoid()
    divergence = (p * (p / q).log() + (1 - p) * ((1 - p) /
                                                 (1 - q)).log()).sum()
    expected = divergence / p.sum().clamp(min=1)
    # times the head's class weight, the images, cls_weight, loss_weight
    assert out['loss_cls'].item() == pytest.approx(
        expected.item() * head.loss_cls.loss_weight * 2 * 3.0 * 0.5,
        rel=1e-5)
    hard = head.loss_by_feat(*student, gt, metas)
    for key in ('loss_bbox', 'loss_dfl'):
        assert hard[key].item() > 0
        torch.testing.assert_close(out[key], 0.5 * 4.0 * hard[key])
    same = loss(head, (teacher[0], student[1], student[2]), teacher, gt,
                metas)
    assert same['loss_cls'].item() == pytest.approx(0, abs=1e-7)


def test_shapes_must_match_and_head_must_be_yolo():
    head = build_head(tiny_detector_cfg())
    loss = MODELS.build(SOFT)
    small = yolov5_outs(0, sizes=((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match='one size'):
        loss(head, yolov5_outs(0), small, [], [])
    with pytest.raises(ValueError, match='conf_thr'):
        MODELS.build(dict(SOFT, conf_thr=2.))
    with pytest.raises(ValueError, match='loss_weight'):
        MODELS.build(dict(SOFT, loss_weight=-1.))


def soft_model(detector=None, **kwargs):
    kwargs.setdefault('distill_loss', dict(type='YOLOSoftDistillLoss'))
    if detector is not None:
        kwargs['detector'] = detector
    return build_ssda(**kwargs)


@pytest.mark.parametrize('v8', [False, True])
def test_paired_images_align_teacher_and_student_cells(v8):
    """Teacher on target_fake and student on target_real see the same cells:
    with teacher == student and identical images the soft terms vanish; a
    shifted student image breaks the alignment."""
    model = soft_model(
        yolov8_tiny_cfg() if v8 else None,
        distill_loss=dict(type='YOLOSoftDistillLoss', loss_weight=1.))
    freeze_batch_norm(model.student)  # same normalisation as the teacher
    # an untrained tiny net barely depends on its input: make it
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    if not v8:
        boost_scores(model.student, obj=2., cls=(1., -1.))
    model.sync_teacher_with_student()
    inputs, samples = four_stream_batch()
    inputs['target_real'] = inputs['target_fake'].clone()
    soft_keys = ('loss_cls', ) if v8 else ('loss_cls', 'loss_obj')
    losses = model.loss(inputs, copy.deepcopy(samples))
    for key in soft_keys:
        assert losses[f'distill.{key}'].item() == pytest.approx(0, abs=1e-7)
    inputs['target_real'] = inputs['target_fake'].roll(8, dims=3)
    shifted = model.loss(inputs, copy.deepcopy(samples))
    for key in soft_keys:
        assert shifted[f'distill.{key}'].item() > 1e-4


def test_soft_distillation_through_the_detector():
    model = soft_model(
        distill_loss=dict(SOFT, conf_thr=0.5),
        semi_train_cfg=dict(fused_student_forward=True))
    freeze_batch_norm(model.student)
    boost_scores(model.teacher)
    inputs, samples = four_stream_batch()
    losses = model.loss(inputs, copy.deepcopy(samples))
    assert {'distill.loss_cls', 'distill.loss_obj', 'distill.loss_bbox',
            'distill.num_pseudo'} <= set(losses)
    assert losses['distill.num_pseudo'].item() > 0
    # by hand from the same parts, per-stream student pass
    pseudo, info = model.get_pseudo_instances(inputs['target_fake'],
                                              samples['target_fake'])
    head = model.student.bbox_head
    expected = model.distill_loss(
        head, head(model.student.extract_feat(inputs['target_real'])),
        info['teacher_outs'], [p.gt_instances for p in pseudo],
        [s.metainfo for s in samples['target_real']])
    for key, value in expected.items():
        torch.testing.assert_close(losses[f'distill.{key}'], value)
    total(losses).backward()
    assert all(p.grad is None for p in model.teacher.parameters())


def test_soft_distillation_with_ignore_uses_images_with_boxes_only():
    model = soft_model(
        distill_loss=SOFT,
        semi_train_cfg=dict(empty_pseudo_policy='ignore'))
    inputs, samples = four_stream_batch()
    pseudo, info = model.get_pseudo_instances(inputs['target_fake'],
                                              samples['target_fake'])
    pseudo[0].gt_instances = pseudo[0].gt_instances[:0]
    pseudo[1].gt_instances = InstanceData(
        bboxes=torch.tensor([[4., 6., 30., 28.]]),
        labels=torch.tensor([0]),
        scores=torch.tensor([0.9]))
    model.get_pseudo_instances = lambda *args: (copy.deepcopy(pseudo), info)
    losses = model.loss(inputs, copy.deepcopy(samples))
    head = model.student.bbox_head
    teacher_outs = tuple([level[1:] for level in out]
                         for out in info['teacher_outs'])
    student = copy.deepcopy(data_sample())
    student.gt_instances = InstanceData(
        bboxes=pseudo[1].gt_instances.bboxes,
        labels=pseudo[1].gt_instances.labels)
    expected = model.distill_loss(
        head, head(model.student.extract_feat(inputs['target_real'][1:])),
        teacher_outs, [student.gt_instances],
        [samples['target_real'][1].metainfo])
    for key, value in expected.items():
        torch.testing.assert_close(losses[f'distill.{key}'], value)
