"""Tiny models and synthetic four-stream batches for the model-side tests."""
import copy
import os.path as osp

import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmssda.registry import MODELS

TESTS_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TESTS_DIR)
TINY_YOLOV5 = osp.join(TESTS_DIR, 'data', 'configs', 'tiny_yolov5.py')
IMG_SIZE = 64


def tiny_detector_cfg():
    """The tiny YOLOv5 (deepen 0.33, widen 0.125, 2 classes) model config."""
    return copy.deepcopy(Config.fromfile(TINY_YOLOV5).model)


def yolov8_tiny_cfg():
    """The YOLOv8 of configs/ssda_yolov8s_city2foggy.py shrunk like
    :func:`tiny_detector_cfg` (deepen 0.33, widen 0.125, 2 classes)."""
    path = osp.join(REPO, 'configs', 'ssda_yolov8s_city2foggy.py')
    detector = copy.deepcopy(Config.fromfile(path).model.detector)
    detector.backbone.update(deepen_factor=0.33, widen_factor=0.125)
    detector.neck.update(deepen_factor=0.33, widen_factor=0.125)
    detector.bbox_head.head_module.update(num_classes=2, widen_factor=0.125)
    detector.train_cfg.assigner.num_classes = 2
    return detector


def group_norm_detector_cfg():
    """:func:`tiny_detector_cfg` with GroupNorm instead of BatchNorm."""
    detector = tiny_detector_cfg()
    group_norm = dict(type='GN', num_groups=1, requires_grad=True)
    detector.backbone.norm_cfg = group_norm
    detector.neck.norm_cfg = group_norm
    return detector


def float_buffers(module):
    """Copies of ``module``'s floating-point buffers (BatchNorm running
    statistics), by name."""
    return {
        name: buf.clone()
        for name, buf in module.named_buffers()
        if buf.dtype.is_floating_point
    }


def freeze_batch_norm(module):
    """BatchNorm layers of ``module`` to eval mode (running statistics), so
    that a train-mode forward equals an eval-mode one."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def ssda_cfg(**kwargs):
    """An SSDADetector config around the tiny YOLOv5; kwargs override."""
    detector = tiny_detector_cfg()
    cfg = dict(
        type='SSDADetector',
        detector=detector,
        data_preprocessor=dict(
            type='mmdet.MultiBranchDataPreprocessor',
            data_preprocessor=detector.data_preprocessor))
    cfg.update(kwargs)
    return cfg


def build_ssda(seed=0, **kwargs):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(ssda_cfg(**kwargs))
    model.train()
    return model


def boost_scores(detector, obj=8., cls=(8., -8.)):
    """Set a YOLOv5 head's objectness and class biases.

    With the defaults every prior scores about 1 for class 0, so the
    pseudo-label thresholds of SSDA-YOLO (0.5) let boxes through.
    """
    head = detector.bbox_head.head_module
    with torch.no_grad():
        for conv in head.convs_pred:
            bias = conv.bias.view(head.num_base_priors, -1)
            bias[:, 4] = obj
            bias[:, 5:5 + head.num_classes] = torch.tensor(cls)


def data_sample(bboxes=None, labels=None, size=IMG_SIZE):
    """A DetDataSample of a ``size`` x ``size`` input with gt_instances."""
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size),
            batch_input_shape=(size, size),
            scale_factor=(1., 1.)))
    bboxes = torch.zeros(0, 4) if bboxes is None else torch.tensor(
        bboxes, dtype=torch.float32)
    labels = torch.zeros(0, dtype=torch.long) if labels is None else \
        torch.tensor(labels, dtype=torch.long)
    sample.gt_instances = InstanceData(bboxes=bboxes, labels=labels)
    return sample


SOURCE_BOXES = [([[4., 6., 30., 28.], [34., 30., 60., 62.]], [0, 1]),
                ([[10., 10., 40., 50.]], [1])]


def four_stream_batch(seed=0, target_labels=None, batch=2):
    """Preprocessed inputs and samples of the four streams.

    Source samples carry ``SOURCE_BOXES``; target samples carry
    ``target_labels`` (a list of (bboxes, labels) per image) or nothing.
    """
    gen = torch.Generator().manual_seed(seed)
    inputs = {
        stream: torch.rand(batch, 3, IMG_SIZE, IMG_SIZE, generator=gen)
        for stream in ('source_real', 'source_fake', 'target_real',
                       'target_fake')
    }
    source = [data_sample(*SOURCE_BOXES[i % 2]) for i in range(batch)]
    if target_labels is None:
        target = [data_sample() for _ in range(batch)]
    else:
        target = [data_sample(*labels) for labels in target_labels]
    samples = dict(
        source_real=copy.deepcopy(source),
        source_fake=copy.deepcopy(source),
        target_real=copy.deepcopy(target),
        target_fake=copy.deepcopy(target))
    return inputs, samples


def total(losses):
    """What MMEngine's parse_losses sums: of each key containing loss, a
    tensor's mean, a list's (one tensor per level) sum of means."""
    return sum((sum(x.mean() for x in v) if isinstance(v, list) else v.mean())
               for k, v in losses.items() if 'loss' in k)
