"""SSDADetector around every head family: mmyolo's YOLOv6, YOLOv7, YOLOv8,
YOLOX, RTMDet and PPYOLOE+, mmdet's RetinaNet, FCOS and Faster R-CNN.

Each detector is the one of its shipped config (configs/ssda_*.py),
shrunk (deepen 0.33, widen 0.125; ResNet-18 with 32-channel FPN) to 2
classes, on 128 px batches of two
pairs. Per detector: a training step with distillation active and
pseudo-labels produced (score_thr 0 on the untrained model), finite
losses summed as MMEngine sums them, the teacher moved by
SSDAMeanTeacherHook's update, prediction by the teacher and by the student,
and the student loading into the plain detector that
tools/model_converters/extract_detector.py writes. Each part that does not
apply to a head is refused with an error naming it.
"""
import copy
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import DefaultScope

from mmssda.engine.hooks import SSDAMeanTeacherHook
from mmssda.models.head_adapters import (BaseHeadAdapter,
                                         CenternessHeadAdapter,
                                         ClassScoreHeadAdapter,
                                         EpochSwitchHeadAdapter,
                                         ObjectnessHeadAdapter,
                                         TwoStageHeadAdapter, YOLOXHeadAdapter,
                                         build_head_adapter)
from mmssda.registry import MODELS
from tests.test_models.utils import REPO, data_sample, total

sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
import extract_detector  # noqa: E402

SIZE = 128
#: name -> (shipped config, expected adapter)
DETECTORS = {
    'yolov6': ('configs/ssda_yolov6_s_city2foggy.py', EpochSwitchHeadAdapter),
    'yolov7': ('configs/ssda_yolov7_tiny_city2foggy.py',
               ObjectnessHeadAdapter),
    'yolov8': ('configs/ssda_yolov8s_city2foggy.py', ClassScoreHeadAdapter),
    'yolox': ('configs/ssda_yolox_s_city2foggy.py', YOLOXHeadAdapter),
    'rtmdet': ('configs/ssda_rtmdet_s_city2foggy.py', ClassScoreHeadAdapter),
    'ppyoloe': ('configs/ssda_ppyoloe_plus_s_city2foggy.py',
                EpochSwitchHeadAdapter),
    'retinanet': ('configs/ssda_retinanet_r50_fpn_city2foggy.py',
                  ClassScoreHeadAdapter),
    'fcos': ('configs/ssda_fcos_r50-caffe_fpn_gn-head_city2foggy.py',
             CenternessHeadAdapter),
    'faster_rcnn': ('configs/ssda_faster-rcnn_r50_fpn_city2foggy.py',
                    TwoStageHeadAdapter),
}
#: Families whose dense outputs YOLOSoftDistillLoss is defined for.
SOFT = ('yolov6', 'yolov7', 'yolov8', 'yolox', 'rtmdet', 'ppyoloe',
        'retinanet')
PSEUDO = dict(score_thr=0.0, max_per_img=5)


def set_num_classes(node, num_classes=2):
    """Every nested ``num_classes`` key of a config tree."""
    if isinstance(node, dict):
        if 'num_classes' in node:
            node['num_classes'] = num_classes
        for value in node.values():
            set_num_classes(value, num_classes)
    elif isinstance(node, list):
        for value in node:
            set_num_classes(value, num_classes)


def shrink_resnet(detector):
    """ResNet-18 with a 32-channel FPN and heads, no pretrained init."""
    detector.backbone.update(depth=18, init_cfg=None)
    detector.neck.update(in_channels=[64, 128, 256, 512], out_channels=32)
    for name in ('bbox_head', 'rpn_head'):
        if name in detector:
            detector[name].update(in_channels=32, feat_channels=32)
    if 'roi_head' in detector:
        detector.roi_head.bbox_roi_extractor.out_channels = 32
        detector.roi_head.bbox_head.update(
            in_channels=32, fc_out_channels=64)


def tiny_model_cfg(name):
    """The SSDADetector config of ``name``, shrunk, 2 classes."""
    path, _ = DETECTORS[name]
    cfg = Config.fromfile(osp.join(REPO, path)).model
    detector = cfg.detector
    if 'depth' in detector.backbone:
        shrink_resnet(detector)
    else:
        detector.backbone.update(
            deepen_factor=0.33, widen_factor=0.125, init_cfg=None)
        detector.neck.update(deepen_factor=0.33, widen_factor=0.125)
        detector.bbox_head.head_module.widen_factor = 0.125
    set_num_classes(detector)
    cfg.detector = detector
    cfg.semi_train_cfg = dict(
        cfg.get('semi_train_cfg', {}),
        pseudo_label_cfg=PSEUDO,
        class_names=('a', 'b'))
    return cfg


def build(name, **overrides):
    cfg = tiny_model_cfg(name)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            value = dict(cfg[key], **value)
        cfg[key] = value
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(cfg)
    model.init_weights()
    # SyncBN (mmyolo's s configs) without a process group: plain BN
    model = revert_sync_batchnorm(model)
    model.train()
    return model


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        stream: torch.rand(2, 3, SIZE, SIZE, generator=gen) * 255
        for stream in ('source_real', 'source_fake', 'target_real',
                       'target_fake')
    }
    source = [
        data_sample([[8., 12., 60., 56.], [68., 60., 120., 124.]], [0, 1],
                    size=SIZE),
        data_sample([[20., 20., 80., 100.]], [1], size=SIZE)
    ]
    target = [data_sample(size=SIZE) for _ in range(2)]
    samples = dict(
        source_real=copy.deepcopy(source),
        source_fake=copy.deepcopy(source),
        target_real=copy.deepcopy(target),
        target_fake=copy.deepcopy(target))
    return inputs, samples


def preprocess(model, inputs, samples):
    data = model.data_preprocessor(
        dict(inputs={k: list(v) for k, v in inputs.items()},
             data_samples=copy.deepcopy(samples)), True)
    return data['inputs'], data['data_samples']


@pytest.fixture(autouse=True)
def message_hub_iter():
    hub = MessageHub.get_current_instance()
    hub.update_info('iter', 0)
    yield hub


@pytest.mark.parametrize('name', sorted(DETECTORS))
def test_trains_predicts_and_exports(name, tmp_path):
    model = build(name)
    assert type(model.head_adapter) is DETECTORS[name][1]
    assert model.head_adapter.num_classes(model.student) == 2
    inputs, samples = preprocess(model, *batch())
    losses = model.loss(inputs, samples)
    assert any(k.startswith('distill.loss') for k in losses)
    assert {'source_real', 'source_fake', 'distill', 'consistency'} == {
        k.split('.')[0]
        for k in losses if 'loss' in k
    }
    assert losses['distill.num_pseudo'].item() > 0  # pseudo-labels made
    assert 0 < losses['distill.teacher_score_p50'].item() <= 1
    assert {'distill.num_pseudo_a', 'distill.num_pseudo_b'} <= set(losses)
    loss = total(losses)
    assert torch.isfinite(loss)
    # the consistency term compares the two source totals as summed
    real = total({k: v for k, v in losses.items()
                  if k.startswith('source_real.')})
    fake = total({k: v for k, v in losses.items()
                  if k.startswith('source_fake.')})
    torch.testing.assert_close(
        losses['consistency.loss'],
        model.consistency_loss.effective_weight(real, fake) *
        (real - fake)**2)
    loss.backward()
    params = [p for p in model.student.parameters() if p.grad is not None]
    assert params
    with torch.no_grad():
        for p in params:
            p.sub_(0.1 * p.grad.sign())
    before = [p.clone() for p in model.teacher.parameters()]
    SSDAMeanTeacherHook(momentum=0.5).momentum_update(model, 0.5)
    assert any(not torch.equal(a, b)
               for a, b in zip(before, model.teacher.parameters()))

    model.eval()
    images = inputs['target_real']
    for on in ('teacher', 'student'):
        model.semi_test_cfg.predict_on = on
        with torch.no_grad():  # as in the validation loop
            preds = model.predict(images,
                                  copy.deepcopy(samples['target_real']))
        assert len(preds) == 2 and 'pred_instances' in preds[0]

    # the exported student is a plain detector that loads strictly
    cfg = Config(dict(model=model_cfg_for_export(name), default_scope='x',
                      test_dataloader=dict(dataset=dict(metainfo={}))))
    plain = extract_detector.plain_config(cfg)
    state = extract_detector.extract_state_dict(
        dict(state_dict=model.state_dict(), ema_state_dict={}), 'student')
    with DefaultScope.overwrite_default_scope(plain.default_scope):
        detector = MODELS.build(plain.model)
    detector = revert_sync_batchnorm(detector)
    detector.load_state_dict(state, strict=True)
    detector.eval()
    model.semi_test_cfg.predict_on = 'student'
    with torch.no_grad():
        ours = model.predict(images, copy.deepcopy(samples['target_real']))
        theirs = detector.predict(images,
                                  copy.deepcopy(samples['target_real']))
    # the same weights (the wrapper may run them in channels_last)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(
            a.pred_instances.scores.sort().values,
            b.pred_instances.scores.sort().values, atol=1e-4, rtol=1e-3)


def model_cfg_for_export(name):
    cfg = tiny_model_cfg(name)
    return dict(cfg, type='SSDADetector')


@pytest.mark.parametrize('name', SOFT)
def test_soft_distillation(name):
    model = build(
        name, distill_loss=dict(type='YOLOSoftDistillLoss', loss_weight=1.))
    inputs, samples = preprocess(model, *batch())
    losses = model.loss(inputs, samples)
    assert 'distill.loss_cls' in losses
    assert ('distill.loss_obj' in losses) == (name in ('yolov7', 'yolox'))
    assert torch.isfinite(total(losses))
    total(losses).backward()


@pytest.mark.parametrize('name', ['fcos', 'faster_rcnn'])
def test_soft_distillation_refused(name):
    head = 'FCOSHead' if name == 'fcos' else 'FasterRCNN'
    with pytest.raises(ValueError, match=f'YOLOSoftDistillLoss.*{head}'):
        build(name, distill_loss=dict(type='YOLOSoftDistillLoss'))


def test_objectness_weight_refused_without_objectness():
    with pytest.raises(ValueError, match='obj_weight.*RTMDetHead'):
        build('rtmdet',
              distill_loss=dict(type='YOLOSoftDistillLoss', obj_weight=1.))


def test_two_stage_refuses_fused_forward():
    with pytest.raises(ValueError,
                       match='fused_student_forward.*FasterRCNN'):
        build('faster_rcnn', semi_train_cfg=dict(fused_student_forward=True))


@pytest.mark.parametrize('name', ['yolov6', 'ppyoloe'])
def test_epoch_switch_needs_iters_per_epoch(name):
    cfg = tiny_model_cfg(name)
    cfg.semi_train_cfg.pop('iters_per_epoch')
    with DefaultScope.overwrite_default_scope('mmssda'):
        with pytest.raises(ValueError,
                           match='initial_epoch.*iters_per_epoch'):
            MODELS.build(cfg)


def test_epoch_follows_iterations(message_hub_iter):
    model = build('yolov6', semi_train_cfg=dict(iters_per_epoch=3))
    inputs, samples = preprocess(model, *batch())
    assigners = []
    head = model.student.bbox_head
    for it, epoch in ((0, 0), (11, 3), (12, 4)):
        message_hub_iter.update_info('iter', it)
        calls = []
        for assigner in ('initial_assigner', 'assigner'):
            module = getattr(head, assigner)
            module.register_forward_hook(
                lambda *args, name=assigner: calls.append(name))
        model.loss(inputs, copy.deepcopy(samples))
        assert message_hub_iter.get_info('epoch') == epoch
        assigners.append(set(calls))
    # YOLOv6-s: ATSS before epoch 4, task-aligned from epoch 4
    assert assigners[0] == {'initial_assigner'}
    assert assigners[2] == {'assigner'}


def test_yolox_labels_are_packed():
    adapter = YOLOXHeadAdapter()
    samples = [
        data_sample([[1., 2., 3., 4.]], [1], size=SIZE),
        data_sample(size=SIZE),
        data_sample([[5., 6., 7., 8.], [9., 10., 11., 12.]], [0, 1],
                    size=SIZE)
    ]
    packed = adapter.pack_data_samples(samples)
    torch.testing.assert_close(
        packed['bboxes_labels'],
        torch.tensor([[0., 1., 1., 2., 3., 4.], [2., 0., 5., 6., 7., 8.],
                      [2., 1., 9., 10., 11., 12.]]))
    assert len(packed['img_metas']) == 3


def test_list_losses_sum_like_mmengine():
    model = build('retinanet')
    inputs, samples = preprocess(model, *batch())
    losses = model.loss(inputs, samples)
    assert isinstance(losses['source_real.loss_cls'], list)
    stream = {k: v for k, v in losses.items() if k.startswith('source_real')}
    from mmengine.model import BaseModel
    expected, _ = BaseModel.parse_losses(None, stream)
    torch.testing.assert_close(model._sum_losses(stream), expected)


def test_adapter_by_mro_and_by_name():
    yolov6 = build('yolov6')
    # YOLOv6Head is a YOLOv5Head: the most specific adapter wins
    assert type(build_head_adapter(yolov6.student)) is EpochSwitchHeadAdapter
    named = build('yolox', head_adapter=dict(type='ObjectnessHeadAdapter'))
    assert type(named.head_adapter) is ObjectnessHeadAdapter

    class Unknown(torch.nn.Module):
        bbox_head = torch.nn.Linear(1, 1)

    with pytest.raises(TypeError, match='no head adapter for Linear'):
        build_head_adapter(Unknown())
    with pytest.raises(TypeError, match='BaseHeadAdapter'):
        build_head_adapter(yolov6.student,
                           dict(type='mmdet.BboxOverlaps2D'))
    assert isinstance(named.head_adapter, BaseHeadAdapter)


def test_unscoped_mmdet_detector_names_the_scope():
    cfg = tiny_model_cfg('retinanet')
    cfg.detector.pop('_scope_')
    with DefaultScope.overwrite_default_scope('mmssda'):
        with pytest.raises(KeyError, match="_scope_='mmdet'"):
            MODELS.build(cfg)


def test_two_stage_pseudo_labels_use_the_pseudo_label_cfg():
    model = build('faster_rcnn')
    model.eval()
    inputs, samples = preprocess(model, *batch())
    rcnn_cfg = copy.deepcopy(model.teacher.roi_head.test_cfg)
    pseudo, info = model.get_pseudo_instances(inputs['target_fake'],
                                              samples['target_fake'])
    assert model.teacher.roi_head.test_cfg == rcnn_cfg  # restored
    assert info['teacher_outs'] is None
    for p, top in zip(pseudo, info['teacher_top_scores']):
        scores = p.gt_instances.scores
        assert 0 < len(scores) <= PSEUDO['max_per_img']
        assert (scores > PSEUDO['score_thr']).all()
        assert scores.max() == top
    assert 'pred_instances' not in samples['target_fake'][0]


def test_consistency_logs_stream_weights_and_warns_once_when_negative(
        monkeypatch):
    import mmssda.models.detectors.ssda_detector as module
    messages = []
    monkeypatch.setattr(module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    # the paper's term (the shipped YOLOv8 config measures it in YOLOv5's
    # units)
    model = build(
        'yolov8',
        consistency_loss=dict(
            type='ConsistencyLoss', reference_loss=None, pull='both'))
    # YOLOv8-sized totals 26 apart: the paper's term (alpha 2) trains the
    # student to do worse on source-real
    real, fake = torch.tensor(36.), torch.tensor(62.)
    losses = model.loss_by_consistency(real, fake)
    assert losses['consistency.real_weight'].item() == pytest.approx(
        1 - 4 * 26)
    assert losses['consistency.fake_weight'].item() == pytest.approx(
        1 + 4 * 26)
    assert len(messages) == 1
    assert 'real_weight -103.00' in messages[0]
    assert 'model.consistency_loss.reference_loss' in messages[0]
    model.loss_by_consistency(real, fake)
    assert len(messages) == 1  # once
    # in YOLOv5's units and pulling the worse loss only: no warning
    model = build(
        'yolov8',
        consistency_loss=dict(
            type='ConsistencyLoss', reference_loss=1.1, pull='worse'))
    losses = model.loss_by_consistency(real, fake)
    assert losses['consistency.real_weight'].item() == 1.0
    assert 1 < losses['consistency.fake_weight'].item() < 5
    assert len(messages) == 1
