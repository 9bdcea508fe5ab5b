"""Every shipped config, end to end as the README runs it: ``tools/train.py``
for 2 iterations with a validation, then ``tools/test.py`` on the best
checkpoint, each on a tiny fixture in the config's own data format
(Cityscapes layout through the COCO converter, VOCdevkit, the original
SSDA-YOLO's YOLO txt, the generated fog_shapes set), written by the test.

The configs are shrunk only through keys a user could pass with
``--cfg-options`` (narrow model, 1 + 1 pairs, no workers, 2 iterations);
everything else, the data configs, pipelines and evaluators included, is
the shipped config. The per-class AP table must name the classes of the
data: the fixture's json categories in json order (COCO), the VOC classes,
or the names of the original's data yaml (YOLO txt), and so must the
checkpoint's ``dataset_meta``.
"""
import copy
import glob
import json
import os
import os.path as osp
import re

import pytest
import torch
import yaml
from mmdet.datasets import VOCDataset
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmssda.registry import MODELS
from mmssda.utils.pretrained import is_url
from tests.fixtures import city2foggy_yolo_txt
from tests.training_helpers import (REPO, TRAIN, load_checkpoint,
                                    make_fog_shapes, run_python)

TEST = osp.join(REPO, 'tools', 'test.py')
CONFIGS = sorted(
    osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '*.py')))
WIDEN = 0.125
MAX_ITERS = 2

# Runs a tool script with mmengine's yapf formatting of the whole config
# (log, dumped config, checkpoint meta) skipped: the same run otherwise,
# a third faster on CPU. argv: script, its arguments.
LAUNCHER = ('import os.path as osp, runpy, sys\n'
            'from mmengine.config import Config\n'
            'Config.pretty_text = property(\n'
            "    lambda self: '# config omitted in tests\\n')\n"
            'sys.argv = sys.argv[1:]\n'
            'sys.path.insert(0, osp.dirname(sys.argv[0]))\n'
            "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def loader_options(name):
    return [
        f'{name}.num_workers=0', f'{name}.persistent_workers=False',
        f'{name}.pin_memory=False'
    ]


#: The model shrunk (narrow) through keys a user could set.
SHRINK = {
    f'model.detector.{part}.widen_factor': WIDEN
    for part in ('backbone', 'neck', 'bbox_head.head_module')
}
#: mmdet's ResNet-FPN detectors: ResNet-18 and a 32-channel FPN...
SHRINK_RESNET_FPN = {
    'model.detector.backbone.depth': 18,
    'model.detector.neck.in_channels': [64, 128, 256, 512],
    'model.detector.neck.out_channels': 32,
}
#: ...with 32-channel dense heads (RetinaNet, FCOS)...
SHRINK_RESNET_ONE_STAGE = {
    **SHRINK_RESNET_FPN,
    'model.detector.bbox_head.in_channels': 32,
    'model.detector.bbox_head.feat_channels': 32,
}
#: ...or RPN and RoI heads (two-stage).
SHRINK_RESNET_TWO_STAGE = {
    **SHRINK_RESNET_FPN,
    'model.detector.rpn_head.in_channels': 32,
    'model.detector.rpn_head.feat_channels': 32,
    'model.detector.roi_head.bbox_roi_extractor.out_channels': 32,
    'model.detector.roi_head.bbox_head.in_channels': 32,
    'model.detector.roi_head.bbox_head.fc_out_channels': 64,
}


def shrink(cfg):
    """The shrink keys for the config's detector."""
    if 'roi_head' in cfg.model.detector:
        return SHRINK_RESNET_TWO_STAGE
    if 'depth' in cfg.model.detector.backbone:
        return SHRINK_RESNET_ONE_STAGE
    return SHRINK


def option(key, value):
    """``key=value`` as --cfg-options parses it (lists without spaces)."""
    return f'{key}={value}'.replace(' ', '')


def model_options(cfg):
    """What tools/test.py needs to rebuild the shrunk model and read the
    data in the main process. Every box is kept (score_thr 0): an untrained
    model scores under the default 0.001, and the COCO metric (and its
    per-class table) needs detections."""
    test_cfg = cfg.model.detector.test_cfg
    score_thr = 'model.detector.test_cfg.rcnn.score_thr' \
        if 'rcnn' in test_cfg else 'model.detector.test_cfg.score_thr'
    return [
        *(option(key, value) for key, value in shrink(cfg).items()),
        f'{score_thr}=0.0',
        *loader_options('test_dataloader'), 'test_dataloader.batch_size=2'
    ]


TRAIN_OPTIONS = [
    f'train_cfg.max_iters={MAX_ITERS}',
    f'train_cfg.val_interval={MAX_ITERS}',
    f'default_hooks.checkpoint.interval={MAX_ITERS}',
    'default_hooks.logger.interval=1',
    'train_dataloader.batch_size=2',
    'train_dataloader.sampler.source_per_batch=1',
    'train_dataloader.sampler.target_per_batch=1',
    'optim_wrapper.optimizer.batch_size_per_gpu=2',
    *loader_options('train_dataloader'),
    *loader_options('val_dataloader'),
    'val_dataloader.batch_size=2',
    'randomness.seed=0',
]


def json_classes(path):
    with open(path) as f:
        return [c['name'] for c in json.load(f)['categories']]


def fog_shapes(root):
    make_fog_shapes(root, num_source=4, num_target=4)
    return json_classes(
        osp.join(root, 'data', 'fog_shapes', 'annotations',
                 'target_val.json'))


def city2foggy_yolo(root):
    data_root = city2foggy_yolo_txt.make_fixture(root)['data_root']
    with open(osp.join(data_root, 'cityscapes_csfoggy_VOC.yaml')) as f:
        return list(yaml.safe_load(f)['names'])


def city2foggy_coco(root):
    from tests.fixtures.cityscapes import make_city2foggy_fixture
    make_city2foggy_fixture(root)
    return json_classes(
        osp.join(root, 'data', 'city2foggy', 'annotations',
                 'foggy_cityscapes_val.json'))


def voc2clipart(root):
    from tests.fixtures.voc2clipart import make_voc2clipart_fixture
    make_voc2clipart_fixture(root)
    return list(VOCDataset.METAINFO['classes'])


def own_yolo_txt(root):
    from tests.fixtures.own_data import make_yolo_txt_fixture
    return make_yolo_txt_fixture(root)['classes']


def own_coco(root):
    from tests.fixtures.own_data import make_coco_fixture
    return make_coco_fixture(root)['classes']


def sim10k2city(root):
    from tests.fixtures.sim10k import make_sim10k2city_fixture
    return make_sim10k2city_fixture(root)['classes']


#: A config's ``data_root`` -> the fixture writer for that data format;
#: each returns the class names the per-class AP tables must show, in
#: label order.
FIXTURES = {
    'data/fog_shapes/': fog_shapes,
    'data/city2foggy/': city2foggy_coco,
    'data/voc2clipart/': voc2clipart,
    'data/city2foggy_yolo/': city2foggy_yolo,
    'data/own_yolo_txt/': own_yolo_txt,
    'data/own_coco/': own_coco,
    'data/sim10k2city/': sim10k2city,
}


def table_rows(log, header):
    """The first cells of the rows of every table in ``log`` whose header
    row starts with ``header``, one list per table (summary rows such as
    VOC's ``mAP`` excluded)."""
    tables = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if not line.startswith('|') or cells[:len(header)] != header:
            continue
        rows = []
        for row in lines[i + 1:]:
            if row.startswith('+'):
                continue
            if not row.startswith('|'):
                break
            name = row.strip('|').split('|')[0].strip()
            if name != 'mAP':
                rows.append(name)
        tables.append(rows)
    return tables


def per_class_tables(log):
    """Class names of the VOC AP50 tables and of the COCO classwise
    tables printed in ``log``."""
    return (table_rows(log, ['class', 'gts', 'dets']),
            table_rows(log, ['category', 'mAP']))


def logged_metrics(work_dir):
    """The scalars of tools/train.py's run in ``work_dir``, by step."""
    [scalars] = glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json'))
    by_step = {}
    with open(scalars) as f:
        for line in f:
            entry = json.loads(line)
            by_step.setdefault(entry.get('step'), {}).update(entry)
    return by_step


def run_tool(script, config, *args, cwd, env_extra=None, timeout=600):
    return run_python(['-c', LAUNCHER, script, config, *args], cwd=cwd,
                      env_extra=env_extra, timeout=timeout)


def write_pretrained(cfg, directory):
    """For a config whose ``load_from`` is a URL (its default pretrained
    weights), write a plain detector checkpoint of the shrunk model to a
    local file, as a user who downloaded the weights by hand gives them
    (``--cfg-options load_from=PATH``; a file under the URL's name in the
    hub cache must carry the hash of the name, which random weights cannot:
    tests/test_utils/test_safe_load.py). Return the path and the weights,
    or None."""
    url = cfg.get('load_from')
    if not is_url(url):
        return None
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict(shrink(cfg))
    torch.manual_seed(123)  # not the run's own initialisation (seed 0)
    with DefaultScope.overwrite_default_scope('mmssda'):
        model = MODELS.build(cfg.model)
    # the detector's own initialisation (prior-probability biases of the
    # class scores), as in a trained checkpoint: PyTorch's default init
    # scores every prior 0.5, and RTMDet's quality focal loss is then so
    # large that 2 iterations move the weights by whole units
    model.init_weights()
    weights = model.student.state_dict()
    path = osp.join(directory, 'pretrained', osp.basename(url))
    os.makedirs(osp.dirname(path))
    torch.save(dict(state_dict=weights), path)
    return path, weights


@pytest.mark.parametrize('config', CONFIGS)
def test_config_trains_validates_and_tests(config, tmp_path):
    config = osp.join(REPO, config)
    cfg = Config.fromfile(config)
    assert cfg.data_root in FIXTURES, f'no fixture for {cfg.data_root}'
    classes = FIXTURES[cfg.data_root](str(tmp_path))
    pretrained = write_pretrained(cfg, str(tmp_path))
    load_from = [] if pretrained is None else [f'load_from={pretrained[0]}']
    work_dir = str(tmp_path / 'work')

    log = run_tool(TRAIN, config, '--work-dir', work_dir, '--cfg-options',
                   *model_options(cfg), *TRAIN_OPTIONS, *load_from,
                   cwd=tmp_path,
                   env_extra=dict(TORCH_HOME=str(tmp_path / 'torch')))
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in log
    checkpoint = osp.join(work_dir, f'iter_{MAX_ITERS}.pth')
    assert osp.isfile(checkpoint)
    if pretrained is not None:
        # started from the default weights: after 2 warmup iterations the
        # teacher (0.99 EMA of the student) still holds their convolutions
        path, weights = pretrained
        assert f'Load checkpoint from {path}' in log
        state = load_checkpoint(checkpoint)['state_dict']
        convs = [k for k in weights if k.endswith('conv.weight')]
        assert convs
        for key in convs:
            assert torch.allclose(
                state[f'teacher.{key}'], weights[key], atol=1e-3), key
    # the validation scored both models and picked the best student
    val = logged_metrics(work_dir)[MAX_ITERS]
    for model in ('teacher', 'student'):
        for metric in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'pascal_voc/mAP'):
            assert f'{model}/{metric}' in val, (model, metric)
    [best] = glob.glob(osp.join(work_dir, 'best_*.pth'))
    voc, coco = per_class_tables(log)
    assert voc == [classes] * 2 and coco == [classes] * 2, (voc, coco)
    meta = load_checkpoint(best)['meta']['dataset_meta']
    assert list(meta['classes']) == classes

    # README: python tools/test.py CONFIG work_dirs/<name>/best_*.pth
    log = run_tool(TEST, config, best, '--work-dir', str(tmp_path / 'test'),
                   '--cfg-options', *model_options(cfg), cwd=tmp_path)
    metrics = re.search(r'Iter\(test\).*teacher/.*', log)
    assert metrics, log[-2000:]
    for model in ('teacher', 'student'):
        for name in classes:
            assert f'{model}/coco/{name}_precision:' in metrics.group(0)
        assert f'{model}/pascal_voc/mAP:' in metrics.group(0)
    voc, coco = per_class_tables(log)
    assert voc == [classes] * 2 and coco == [classes] * 2, (voc, coco)
