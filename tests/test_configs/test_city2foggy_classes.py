"""City -> Foggy: every label index names the json category it came from, on
annotations written by tools/dataset_converters/cityscapes_to_coco.py from a
Cityscapes-layout fixture."""
import json
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmssda.datasets.coco_conversion import CITYSCAPES_DA_CLASSES
from mmssda.registry import DATASETS
from tests.fixtures.cityscapes import make_city2foggy_fixture
from tests.test_models.utils import REPO


def _build(cfg):
    with DefaultScope.overwrite_default_scope('mmssda'):
        return DATASETS.build(cfg)


def _check_labels(dataset, ann_file):
    """Each instance's class name is its json annotation's category name;
    returns the names seen."""
    with open(ann_file) as f:
        coco = json.load(f)
    category = {c['id']: c['name'] for c in coco['categories']}
    classes = dataset.metainfo['classes']
    seen = []
    for idx in range(len(dataset)):
        info = dataset.get_data_info(idx)
        anns = [a for a in coco['annotations']
                if a['image_id'] == info['img_id']]
        got = [(classes[inst['bbox_label']], inst['bbox'])
               for inst in info['instances']]
        want = [(category[a['category_id']],
                 [a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                  a['bbox'][1] + a['bbox'][3]]) for a in anns]
        assert got == want, info['img_path']
        seen += [name for name, _ in got]
    return seen


@pytest.mark.parametrize('config', [
    'configs/oracle_yolov5s_city2foggy.py',
    'configs/ssda_yolov5l_city2foggy_960.py'
])
def test_label_indices_name_the_json_categories(tmp_path, monkeypatch,
                                                config):
    fixture = make_city2foggy_fixture(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # the configs read data/city2foggy/
    cfg = Config.fromfile(osp.join(REPO, config))
    val = _build(cfg.val_dataloader.dataset)
    seen = _check_labels(val, fixture['annotations']
                         ['foggy_cityscapes_val.json'])
    # what CocoMetric, VOCMetric and the checkpoint's dataset_meta name
    assert tuple(val.metainfo['classes']) == CITYSCAPES_DA_CLASSES
    assert sorted(seen) == sorted(CITYSCAPES_DA_CLASSES)
    assert cfg.val_evaluator[0].ann_file == osp.join(
        'data/city2foggy', 'annotations', 'foggy_cityscapes_val.json')

    jsons = ('cityscapes_train.json', 'foggy_cityscapes_train.json')
    for paired_cfg, name in zip(cfg.train_dataloader.dataset.datasets,
                                jsons):
        paired = _build(paired_cfg)  # finds the cityscapes_cut fakes
        assert len(paired) == 4
        assert tuple(paired.metainfo['classes']) == CITYSCAPES_DA_CLASSES
        seen = _check_labels(paired.dataset, fixture['annotations'][name])
        assert sorted(seen) == sorted(CITYSCAPES_DA_CLASSES * 2)


def test_converter_categories_follow_the_config_order(tmp_path):
    fixture = make_city2foggy_fixture(str(tmp_path), target_labels=False)
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'datasets', 'city2foggy.py'))
    for ann_file in fixture['annotations'].values():
        with open(ann_file) as f:
            categories = json.load(f)['categories']
        assert [c['name'] for c in categories] == list(cfg.class_name)
        assert [c['id'] for c in categories] == list(range(1, 9))
