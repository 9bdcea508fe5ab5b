"""The own-data configs do what docs/own_data.md says: the lines it tells a
user to edit are the marked lines of each data config, shown as they are;
a copy of a config with only those lines changed (another folder, other
class names) builds its data sets with those paths and classes, and the
YOLO txt copy trains; the guide's snippets for fakes made on the fly, no
fakes and another per-GPU batch build as child configs."""
import json
import os.path as osp
import re
import shutil
import textwrap

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmssda.registry import DATASETS
from mmssda.utils import scale_recipe
from tests.fixtures.own_data import make_coco_fixture, make_yolo_txt_fixture
from tests.fixtures.sim10k import make_sim10k2city_fixture
from tests.training_helpers import REPO, load_checkpoint, omit_config_text

GUIDE = osp.join(REPO, 'docs', 'own_data.md')
EDIT_START = '# ==== Edit these lines'
EDIT_END = '# ==== End of the lines to edit. ===='
#: data config -> the top-level config that inherits it
CONFIGS = {
    'configs/_base_/datasets/own_yolo_txt.py':
    'configs/ssda_yolov5s_own-yolo-txt.py',
    'configs/_base_/datasets/own_coco.py': 'configs/ssda_yolov5s_own-coco.py',
    'configs/_base_/datasets/sim10k2city.py':
    'configs/ssda_yolov5s_sim10k2city.py',
}
#: What the guide says a user edits: paths and class names.
EDITABLE = re.compile(
    r'^(data_root|class_name|\w+_(root|images|ann|ids|fakes)) = ')
#: The model and data options a CPU test can afford, through keys a user
#: could pass with --cfg-options.
TINY = {
    **{
        f'model.detector.{part}.widen_factor': 0.125
        for part in ('backbone', 'neck', 'bbox_head.head_module')
    },
    'load_from': None,
    'train_cfg.max_iters': 1,
    'default_hooks.checkpoint.interval': 1,
    'default_hooks.logger.interval': 1,
    'train_dataloader.batch_size': 2,
    'train_dataloader.sampler.source_per_batch': 1,
    'train_dataloader.sampler.target_per_batch': 1,
    'optim_wrapper.optimizer.batch_size_per_gpu': 2,
    'randomness.seed': 0,
    'visualizer.vis_backends': [dict(type='LocalVisBackend')],
    **{
        f'{loader}.{key}': value
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
        for key, value in (('num_workers', 0), ('persistent_workers', False),
                           ('pin_memory', False))
    },
}


def edit_block(path):
    """The code lines between the edit markers of a config file."""
    with open(osp.join(REPO, path)) as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(EDIT_START))
    end = lines.index(EDIT_END)
    return [
        line for line in lines[start + 1:end]
        if line.strip() and not line.startswith('#')
    ]


def python_blocks(path):
    """The bodies of the ```python blocks of a markdown file."""
    with open(path) as f:
        text = f.read()
    return [
        textwrap.dedent(block).strip('\n').splitlines()
        for block in re.findall(r'```python\n(.*?)```', text, re.S)
    ]


def edited_copy(tmp_path, data_config, replace):
    """Copy the data config and its top-level config into ``tmp_path``
    (the recipe inherited from the repository) with the edit block's lines
    replaced (``replace``: variable name -> new right-hand side); return
    the copy of the top-level config."""
    with open(osp.join(REPO, data_config)) as f:
        text = f.read()
    block = edit_block(data_config)
    for name, value in replace.items():
        [line] = [x for x in block if x.startswith(f'{name} = ')]
        assert text.count(line + '\n') == 1, line
        text = text.replace(line + '\n', f'{name} = {value}\n')
    recipe = osp.join(REPO, 'configs', '_base_', 'ssda_yolov5_s.py')
    text = text.replace("_base_ = '../ssda_yolov5_s.py'",
                        f'_base_ = {recipe!r}')
    (tmp_path / 'my_data.py').write_text(text)
    with open(osp.join(REPO, CONFIGS[data_config])) as f:
        top = f.read()
    base_line = f"_base_ = './_base_/datasets/{osp.basename(data_config)}'"
    assert top.count(base_line) == 1
    top = top.replace(base_line, "_base_ = './my_data.py'")
    (tmp_path / 'my_run.py').write_text(top)
    return str(tmp_path / 'my_run.py')


def build(cfg):
    with DefaultScope.overwrite_default_scope('mmssda'):
        train = DATASETS.build(cfg.train_dataloader.dataset)
        val = DATASETS.build(cfg.val_dataloader.dataset)
    return train, val


@pytest.mark.parametrize('data_config', sorted(CONFIGS))
def test_guide_shows_the_marked_lines(data_config):
    block = edit_block(data_config)
    assert block and all(EDITABLE.match(line) for line in block), block
    assert block in python_blocks(GUIDE), f'{data_config}: {block}'
    with open(GUIDE) as f:
        guide = f.read()
    assert f'`{data_config}`' in guide and f'`{CONFIGS[data_config]}`' \
        in guide


def test_yolo_txt_edited_copy_trains(tmp_path, monkeypatch):
    """Another folder and three other classes, in the marked lines only."""
    classes = ('cat', 'dog', 'bird')
    root = make_yolo_txt_fixture(
        str(tmp_path), data_dir='sets/pets', classes=classes)['data_root']
    config = edited_copy(
        tmp_path, 'configs/_base_/datasets/own_yolo_txt.py',
        dict(data_root=repr(root + '/'), class_name=repr(classes)))
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(TINY)
    cfg.work_dir = str(tmp_path / 'work')
    train, val = build(cfg)
    assert [len(d) for d in train.datasets] == [4, 4]
    assert all(
        info['img_path'].startswith(root) for d in train.datasets
        for info in (d.get_data_info(i) for i in range(len(d))))
    assert train.datasets[0].fake_img_paths[0].startswith(
        osp.join(root, 'fakes', 'source', 'train'))
    assert tuple(val.metainfo['classes']) == classes
    assert cfg.model.detector.bbox_head.head_module.num_classes == 3

    # one training iteration (the shipped config's validation runs in
    # test_config_runs.py)
    cfg.merge_from_dict(
        dict(val_cfg=None, val_dataloader=None, val_evaluator=None))
    scale_recipe(cfg, img_scale=(128, 128))  # what a user's img_scale does
    omit_config_text(monkeypatch)
    monkeypatch.chdir(tmp_path)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    meta = load_checkpoint(osp.join(cfg.work_dir, 'iter_1.pth'))['meta']
    assert tuple(meta['dataset_meta']['classes']) == classes


def test_coco_edited_copy_reads_the_json_order(tmp_path):
    """Another folder and class names in the json's category order: every
    label names its json category."""
    categories = ({'id': 4, 'name': 'truck'}, {'id': 9, 'name': 'bus'},
                  {'id': 1, 'name': 'van'})
    fixture = make_coco_fixture(
        str(tmp_path), data_dir='coco_set', categories=categories)
    root = fixture['data_root']
    config = edited_copy(
        tmp_path, 'configs/_base_/datasets/own_coco.py',
        dict(data_root=repr(root + '/'),
             class_name=repr(('truck', 'van'))))
    cfg = Config.fromfile(config)
    assert cfg.val_evaluator[0].ann_file == osp.join(
        root, 'annotations', 'target_val.json')
    train, val = build(cfg)
    seen = set()
    for dataset, name in ((train.datasets[0].dataset, 'source_train.json'),
                          (val, 'target_val.json')):
        with open(fixture['annotations'][name]) as f:
            coco = json.load(f)
        category = {c['id']: c['name'] for c in coco['categories']}
        names = dataset.metainfo['classes']
        assert tuple(names) == ('truck', 'van')
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            want = sorted(
                (category[a['category_id']], a['bbox'][0])
                for a in coco['annotations']
                if a['image_id'] == info['img_id']
                and category[a['category_id']] != 'bus')
            got = sorted((names[inst['bbox_label']], inst['bbox'][0])
                         for inst in info['instances'])
            assert got == want, info['img_path']
            seen |= {n for n, _ in got}
    assert seen == {'truck', 'van'}


def test_sim10k_edited_copy_reads_car_only(tmp_path):
    """Other folders (paths only): Sim10k's car boxes, none of its person
    and motorbike boxes; the car-only Cityscapes json."""
    fixture = make_sim10k2city_fixture(str(tmp_path))
    root = fixture['data_root']
    moved = str(tmp_path / 'elsewhere')
    shutil.move(osp.join(root, 'sim10k'), moved)
    config = edited_copy(
        tmp_path, 'configs/_base_/datasets/sim10k2city.py',
        dict(data_root=repr(root + '/'),
             sim10k_root=repr(osp.join(moved, 'VOC2012') + '/')))
    train, val = build(Config.fromfile(config))
    source = train.datasets[0]
    assert len(source) == 4
    for i in range(len(source)):
        info = source.get_data_info(i)
        assert info['img_path'].startswith(moved)
        cars = [
            box for cls, box in fixture['sim10k_boxes'][info['img_id']]
            if cls == 'car'
        ]
        # mmdet's VOC reading: 1-based corners minus one
        assert [inst['bbox'] for inst in info['instances']
                ] == [[c - 1 for c in box] for box in cars]
        assert info['fake_img_path'].startswith(
            osp.join(root, 'sim10k_fake', 'JPEGImages'))
    assert tuple(val.metainfo['classes']) == ('car', )
    assert sum(len(val.get_data_info(i)['instances'])
               for i in range(len(val))) == 1


def child_of_guide_snippet(tmp_path, marker):
    """A child config of the YOLO txt config made of the guide's python
    block that contains ``marker``."""
    [block] = [b for b in python_blocks(GUIDE) if marker in '\n'.join(b)]
    base = osp.join(REPO, 'configs', 'ssda_yolov5s_own-yolo-txt.py')
    path = tmp_path / 'child.py'
    path.write_text(f'_base_ = {base!r}\n' + '\n'.join(block) + '\n')
    return Config.fromfile(str(path))


@pytest.mark.parametrize('marker,fake_type', [('FDAStyleTransfer', 'FDA'),
                                              ('RealAsFake', 'RealAsFake')])
def test_guide_fake_snippets_build(tmp_path, monkeypatch, marker,
                                   fake_type):
    make_yolo_txt_fixture(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    cfg = child_of_guide_snippet(tmp_path, marker)
    train, _ = build(cfg)
    for dataset in train.datasets:
        assert dataset.fake_root is None
        assert dataset.fake_img_paths == [None] * 4
        assert fake_type in repr(dataset.fake_pipeline)
        sample = dataset[0]  # the pipeline makes the fake
        assert sample['inputs'][f'{dataset.domain}_fake'].shape == \
            sample['inputs'][f'{dataset.domain}_real'].shape
    if marker == 'RealAsFake':
        assert cfg.model.consistency_loss is None
        assert cfg.model.semi_train_cfg.supervised_streams == [
            'source_real'
        ]


def test_guide_batch_snippet_sets_every_batch_key(tmp_path):
    cfg = child_of_guide_snippet(tmp_path, 'source_per_batch = 4')
    loader = cfg.train_dataloader
    assert (loader.batch_size, loader.sampler.source_per_batch,
            loader.sampler.target_per_batch,
            cfg.optim_wrapper.optimizer.batch_size_per_gpu) == (8, 4, 4, 8)
