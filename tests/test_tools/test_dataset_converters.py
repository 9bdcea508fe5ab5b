import importlib.util
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

TOOLS = osp.join(osp.dirname(__file__), '..', '..', 'tools',
                 'dataset_converters')


def _tool(name):
    spec = importlib.util.spec_from_file_location(
        name, osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png(path, w=40, h=30):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.zeros((h, w, 3), np.uint8))


def _fake_cityscapes(root):
    """Two train frames (aachen) and one val frame (frankfurt)."""
    frames = [('train', 'aachen', 'aachen_000000_000019'),
              ('train', 'aachen', 'aachen_000001_000019'),
              ('val', 'frankfurt', 'frankfurt_000000_000294')]
    objects = [
        dict(label='car', polygon=[[2, 3], [10, 3], [10, 8], [2, 8]]),
        dict(label='person', polygon=[[35, 20], [45, 29], [38, 25]]),
        dict(label='cargroup', polygon=[[0, 0], [5, 5], [0, 5]]),
        dict(label='road', polygon=[[0, 0], [39, 29], [0, 29]]),
        dict(label='bicycle', polygon=[[5, 5], [5, 5], [5, 5]]),
    ]
    for split, city, stem in frames:
        gt = osp.join(root, 'gtFine', split, city,
                      stem + '_gtFine_polygons.json')
        os.makedirs(osp.dirname(gt), exist_ok=True)
        with open(gt, 'w') as f:
            json.dump(dict(imgHeight=30, imgWidth=40, objects=objects), f)
        _png(osp.join(root, 'leftImg8bit', split, city,
                      stem + '_leftImg8bit.png'))
        for beta in ('0.02', '0.01'):
            _png(osp.join(root, 'leftImg8bit_foggy', split, city,
                          f'{stem}_leftImg8bit_foggy_beta_{beta}.png'))


def test_cityscapes_to_coco(tmp_path, capsys):
    root, out = str(tmp_path / 'cs'), str(tmp_path / 'out')
    _fake_cityscapes(root)
    _tool('cityscapes_to_coco').main(
        ['--cityscapes-root', root, '--out-dir', out])
    printed = capsys.readouterr().out
    assert 'cityscapes_train.json: 2 images, 6 boxes' in printed
    assert 'foggy_cityscapes_train.json: 2 images, 0 boxes' in printed
    assert 'foggy_cityscapes_val.json: 1 images, 3 boxes' in printed
    assert 'the benchmark has 2975' in printed
    source = json.load(open(osp.join(out, 'cityscapes_train.json')))
    # SSDA-YOLO's order, the one configs/_base_/datasets/city2foggy.py reads
    assert [c['name'] for c in source['categories']] == [
        'bus', 'bicycle', 'car', 'motorcycle', 'person', 'rider', 'train',
        'truck']
    assert source['images'][0]['file_name'] == osp.join(
        'aachen', 'aachen_000000_000019_leftImg8bit.png')
    anns = [a for a in source['annotations'] if a['image_id'] == 1]
    # tight pixel bounds, exclusive end: x 2..10 -> [2, 11), clipped at W
    assert [(a['category_id'], a['bbox']) for a in anns] == [
        (3, [2.0, 3.0, 9.0, 6.0]), (5, [35.0, 20.0, 5.0, 10.0]),
        (2, [5.0, 5.0, 1.0, 1.0])]
    val = json.load(open(osp.join(out, 'foggy_cityscapes_val.json')))
    assert val['images'][0]['file_name'].endswith('_foggy_beta_0.02.png')
    target = json.load(open(osp.join(out, 'foggy_cityscapes_train.json')))
    assert target['annotations'] == [] and len(target['images']) == 2


def test_cityscapes_to_coco_refuses_empty(tmp_path, capsys):
    root = str(tmp_path / 'cs')
    os.makedirs(osp.join(root, 'gtFine', 'train'))
    with pytest.raises(SystemExit) as err:
        _tool('cityscapes_to_coco').main(
            ['--cityscapes-root', root, '--out-dir', str(tmp_path / 'o')])
    assert 'refusing to write' in str(err.value.code)
    assert not osp.exists(tmp_path / 'o' / 'cityscapes_train.json')
    _fake_cityscapes(root)
    with pytest.raises(SystemExit, match='missing'):
        _tool('cityscapes_to_coco').main(
            ['--cityscapes-root', root, '--out-dir', str(tmp_path / 'o'),
             '--beta', '0.005'])


def test_yolo_to_coco_round_trip(tmp_path, capsys):
    from mmssda.registry import DATASETS
    img_dir = tmp_path / 'images'
    _png(str(img_dir / 'a.png'), 40, 20)
    _png(str(img_dir / 'b.png'), 40, 20)
    os.makedirs(tmp_path / 'labels')
    (tmp_path / 'labels' / 'a.txt').write_text('1 0.5 0.5 0.5 0.5\n')
    (tmp_path / 'labels' / 'b.txt').write_text('')
    out = str(tmp_path / 'coco.json')
    with pytest.warns(UserWarning, match='b.txt'):
        _tool('yolo_to_coco').main(
            [str(img_dir), out, '--classes', 'cat', 'dog'])
    assert 'coco.json: 2 images, 1 boxes' in capsys.readouterr().out
    ds = DATASETS.build(
        dict(type='YOLOv5CocoDataset', ann_file=out,
             data_prefix=dict(img=str(img_dir) + '/'),
             metainfo=dict(classes=('cat', 'dog')), test_mode=True))
    info = ds.get_data_info(0)
    assert info['img_id'] == 1 and info['img_path'].endswith('a.png')
    assert info['instances'][0]['bbox'] == [10.0, 5.0, 30.0, 15.0]
    assert info['instances'][0]['bbox_label'] == 1
    (tmp_path / 'labels' / 'a.txt').write_text('')
    with pytest.raises(SystemExit, match='refusing'), pytest.warns(
            UserWarning):
        _tool('yolo_to_coco').main(
            [str(img_dir), out, '--classes', 'cat', 'dog'])
    with pytest.raises(SystemExit, match='no images found'):
        _tool('yolo_to_coco').main(
            [str(tmp_path / 'labels'), out, '--classes', 'cat'])


def test_cityscapes_to_coco_clear_target_car_only(tmp_path, capsys):
    """``--no-foggy --classes car`` writes clear train and val files with
    the car boxes only (category id 1) and reads no foggy image."""
    root, out = str(tmp_path / 'cs'), str(tmp_path / 'out')
    _fake_cityscapes(root)
    shutil.rmtree(osp.join(root, 'leftImg8bit_foggy'))
    _tool('cityscapes_to_coco').main([
        '--cityscapes-root', root, '--out-dir', out, '--no-foggy',
        '--classes', 'car'
    ])
    printed = capsys.readouterr().out
    assert "cityscapes_train.json: 2 images, 2 boxes {'car': 2}" in printed
    assert "cityscapes_val.json: 1 images, 1 boxes {'car': 1}" in printed
    assert sorted(os.listdir(out)) == [
        'cityscapes_train.json', 'cityscapes_val.json'
    ]
    val = json.load(open(osp.join(out, 'cityscapes_val.json')))
    assert val['categories'] == [dict(id=1, name='car')]
    assert val['images'][0]['file_name'] == osp.join(
        'frankfurt', 'frankfurt_000000_000294_leftImg8bit.png')
    assert [(a['category_id'], a['bbox']) for a in val['annotations']] == [
        (1, [2.0, 3.0, 9.0, 6.0])]
    with pytest.raises(SystemExit):
        _tool('cityscapes_to_coco').main([
            '--cityscapes-root', root, '--out-dir', out, '--classes', 'cars'
        ])
    assert '--classes cars: each must be one of the Cityscapes instance ' \
        'classes person, rider, car' in capsys.readouterr().err
