import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmssda.registry import MODELS, TRANSFORMS
from tests.conftest import CONFIG_DIR


def tiny_yolov5_cfg():
    return Config.fromfile(f'{CONFIG_DIR}/tiny_yolov5.py')


def test_registries_are_mmssda_children_of_mmyolo():
    assert MODELS.scope == 'mmssda'
    assert MODELS.parent.scope == 'mmyolo'
    assert TRANSFORMS.parent.scope == 'mmyolo'


def test_scoped_config_builds_mmyolo_model_and_mmdet_component():
    cfg = tiny_yolov5_cfg()
    # the config inherits mmyolo's own YOLOv5 config across scopes
    assert cfg.model.type == 'YOLODetector'
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(cfg.model)
        flip = TRANSFORMS.build(dict(type='mmdet.RandomFlip', prob=0.5))
    assert type(model).__module__.startswith('mmyolo.')
    assert type(flip).__module__.startswith('mmdet.')
    assert model.bbox_head.num_classes == 2


def test_tiny_yolov5_forward_loss_backward():
    torch.manual_seed(0)
    cfg = tiny_yolov5_cfg()
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(cfg.model)
    model.train()
    inputs = torch.rand(2, 3, 64, 64) * 255
    samples = []
    for boxes, labels in ([[4., 6., 30., 40.]], [0]), ([], []):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes).reshape(-1, 4),
            labels=torch.tensor(labels, dtype=torch.long))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=list(inputs.to(torch.uint8)), data_samples=samples),
        training=True)
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_obj', 'loss_bbox'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(data['inputs'])
    # three detection levels at strides 8, 16, 32
    assert [f.shape[-1] for f in feats] == [8, 4, 2]
