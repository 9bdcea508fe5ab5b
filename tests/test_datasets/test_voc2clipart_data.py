"""configs/ssda_yolov5s_voc2clipart.py on data in the real VOC layout:
VOC 2007 + 2012 as the source, Clipart1k (VOC xml) as the target."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from tests.fixtures.voc2clipart import (FIXTURE_CLASSES,
                                        make_voc2clipart_fixture)
from tests.test_models.utils import REPO

CONFIG = osp.join(REPO, 'configs', 'ssda_yolov5s_voc2clipart.py')


@pytest.fixture
def voc2clipart(tmp_path, monkeypatch):
    """The config (in-process loading settings) and its fixture data in the
    working directory."""
    info = make_voc2clipart_fixture(tmp_path)
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(CONFIG)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.pin_memory = False
    with DefaultScope.overwrite_default_scope('mmssda'):
        yield cfg, info


def test_train_dataloader_draws_both_domains(voc2clipart):
    cfg, info = voc2clipart
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.sampler.update(source_per_batch=2,
                                        target_per_batch=2)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    source, target = loader.dataset.datasets
    ids = info['ids']
    # VOC 2007 + 2012 trainval in one source domain, paired with their fakes
    assert len(source) == len(ids['VOCdevkit/VOC2007/trainval']) + len(
        ids['VOCdevkit/VOC2012/trainval'])
    assert len(target) == len(ids['clipart/train'])
    fakes = {osp.relpath(p, info['data_root']) for p in source.fake_img_paths}
    assert fakes == {
        f'VOCdevkit_cut/{year}/JPEGImages/{i}.png'
        for year in ('VOC2007', 'VOC2012')
        for i in ids[f'VOCdevkit/{year}/trainval']
    }
    # no VOC year in the domains' metainfo: both domains agree
    assert 'dataset_type' not in source.metainfo
    assert source.metainfo == target.metainfo == loader.dataset.metainfo
    assert loader.dataset.metainfo['classes'][6] == 'car'

    batch = next(iter(loader))
    inputs, samples = batch['inputs'], batch['data_samples']
    # collated per stream: 2 source pairs, then 2 target pairs
    assert [s is not None for s in samples['source_real']] == [
        True, True, False, False
    ]
    assert [s is not None for s in samples['target_fake']] == [
        False, False, True, True
    ]
    classes = loader.dataset.metainfo['classes']
    fixture_labels = {classes.index(c) for c in FIXTURE_CLASSES}
    num_boxes = 0
    for i in range(4):
        streams = ('source_real', 'source_fake') if i < 2 else (
            'target_real', 'target_fake')
        real, fake = (inputs[s][i] for s in streams)
        assert real.shape == fake.shape == (3, 640, 640)
        # the fakes are the inverted images: the pair differs
        assert not torch.equal(real, fake)
        labels = samples[streams[0]][i].gt_instances.labels
        assert set(labels.tolist()) <= fixture_labels
        num_boxes += len(labels) if i < 2 else 0
    assert num_boxes > 0


def _predictions_from_ground_truth(data_samples, drop_label):
    """Perfect detections (the annotations in original image coordinates)
    except for the class ``drop_label``."""
    for sample in data_samples:
        anns = [
            a for a in sample.metainfo['instances']
            if a['bbox_label'] != drop_label
        ]
        pred = InstanceData()
        pred.bboxes = torch.tensor([a['bbox'] for a in anns],
                                   dtype=torch.float32).reshape(-1, 4)
        pred.scores = torch.ones(len(anns))
        pred.labels = torch.tensor([a['bbox_label'] for a in anns],
                                   dtype=torch.long)
        sample.pred_instances = pred
    return data_samples


def test_val_evaluator_reports_per_class_ap(voc2clipart):
    cfg, info = voc2clipart
    loader = Runner.build_dataloader(cfg.val_dataloader)
    assert len(loader.dataset) == len(info['ids']['clipart/test'])
    classes = loader.dataset.metainfo['classes']
    evaluator = Evaluator(cfg.val_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    seen = set()
    dog = classes.index('dog')
    for batch in loader:
        for sample in batch['data_samples']:
            seen |= set(sample.gt_instances.labels.tolist())
        evaluator.process(
            _predictions_from_ground_truth(batch['data_samples'], dog),
            batch)
    assert dog in seen and len(seen) > 1, 'fixture: dog and another class'
    metrics = evaluator.evaluate(len(loader.dataset))
    # per-class AP: perfect for every class but the one left out
    for label in seen:
        want = 0.0 if label == dog else 1.0
        assert metrics[f'coco/{classes[label]}_precision'] == want
    assert metrics['coco/bbox_mAP_50'] == pytest.approx(
        (len(seen) - 1) / len(seen), abs=1e-3)
    assert metrics['pascal_voc/mAP'] == pytest.approx(
        (len(seen) - 1) / len(seen), abs=1e-3)
    # the recipe's checkpoint hook keeps the best student by this key
    assert cfg.default_hooks.checkpoint.save_best == 'student/pascal_voc/mAP'
    assert np.isfinite(metrics['coco/bbox_mAP'])
