import copy
import os.path as osp
import sys
from unittest.mock import Mock

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmssda.engine.hooks import StudentEMAHook
from tests.conftest import make_coco_shapes
from tests.test_models.utils import (REPO, TINY_YOLOV5, boost_scores,
                                     build_ssda, ssda_cfg)

sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
import extract_detector  # noqa: E402


def write_ssda_checkpoint(tmp_path):
    """A config and a checkpoint as the runner writes them."""
    data_root = str(tmp_path / 'shapes') + '/'
    make_coco_shapes(data_root)
    tiny = Config.fromfile(TINY_YOLOV5)
    tiny.merge_from_dict({
        'test_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_evaluator.ann_file': data_root + 'annotations/train.json',
        'val_evaluator.ann_file': data_root + 'annotations/train.json',
    })
    cfg = Config(
        dict(
            default_scope='mmssda',
            model=ssda_cfg(semi_test_cfg=dict(predict_on='student')),
            test_dataloader=tiny.test_dataloader,
            val_dataloader=tiny.val_dataloader,
            test_evaluator=tiny.test_evaluator,
            val_evaluator=tiny.val_evaluator,
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=1),
            custom_hooks=[dict(type='StudentEMAHook')]))
    cfg_path = str(tmp_path / 'ssda.py')
    cfg.dump(cfg_path)

    model = build_ssda()
    boost_scores(model.student, obj=2., cls=(2., -2.))
    runner = Mock(model=model, _resume=False, iter=0)
    runner.optim_wrapper.should_update.return_value = True
    hook = StudentEMAHook()
    hook.before_run(runner)
    hook.after_train_iter(runner, 0)
    with torch.no_grad():  # the raw student moves on; the EMA barely
        for p in model.student.parameters():
            p.add_(0.05)
    hook.after_train_iter(runner, 1)
    checkpoint = dict(
        state_dict=copy.deepcopy(model.state_dict()),
        meta=dict(dataset_meta=dict(classes=('square', 'disc'))))
    hook.before_save_checkpoint(runner, checkpoint)
    ckpt_path = str(tmp_path / 'ssda.pth')
    torch.save(checkpoint, ckpt_path)
    return cfg_path, ckpt_path, data_root, hook


def test_extracted_student_gives_the_same_detections(tmp_path):
    from mmdet.apis import DetInferencer, inference_detector
    cfg_path, ckpt_path, data_root, hook = write_ssda_checkpoint(tmp_path)
    out = str(tmp_path / 'out' / 'plain.pth')
    extract_detector.main([cfg_path, ckpt_path, out])

    plain = torch.load(out, map_location='cpu')
    assert plain['meta']['dataset_meta']['classes'] == ('square', 'disc')
    assert plain['meta']['extracted_model'] == 'student-EMA'
    saved = torch.load(ckpt_path, map_location='cpu')
    # the runner saves the student-EMA as student.*, the raw one aside
    assert plain['state_dict'].keys() == hook.ema_model.module.state_dict(
    ).keys()
    for k, v in plain['state_dict'].items():
        assert torch.equal(v, saved['state_dict']['student.' + k])
        assert torch.equal(v, hook.ema_model.module.state_dict()[k])
    plain_cfg = Config.fromfile(str(tmp_path / 'out' / 'plain.py'))
    assert plain_cfg.default_scope == 'mmyolo'
    assert plain_cfg.model.type == 'YOLODetector'

    img = osp.join(data_root, 'images', '0000.jpg')
    wrapper = build_ssda(seed=11)
    load_checkpoint(wrapper, ckpt_path, map_location='cpu')
    wrapper.cfg = Config.fromfile(cfg_path)
    wrapper.eval()
    with DefaultScope.overwrite_default_scope('mmssda'):
        in_wrapper = inference_detector(wrapper, img).pred_instances
    with DefaultScope.overwrite_default_scope('mmyolo'):
        inferencer = DetInferencer(
            model=str(tmp_path / 'out' / 'plain.py'),
            weights=out,
            device='cpu',
            scope='mmyolo',
            show_progress=False)
        result = inferencer(img, return_datasamples=True)
    extracted = result['predictions'][0].pred_instances
    assert len(in_wrapper) > 0
    torch.testing.assert_close(extracted.bboxes, in_wrapper.bboxes)
    torch.testing.assert_close(extracted.scores, in_wrapper.scores)
    assert torch.equal(extracted.labels, in_wrapper.labels)


def test_teacher_and_refusal_to_overwrite(tmp_path):
    cfg_path, ckpt_path, _, _ = write_ssda_checkpoint(tmp_path)
    out = str(tmp_path / 'teacher.pth')
    extract_detector.main([cfg_path, ckpt_path, out, '--model', 'teacher'])
    saved = torch.load(ckpt_path, map_location='cpu')
    plain = torch.load(out, map_location='cpu')
    assert plain['meta']['extracted_model'] == 'teacher'
    for k, v in plain['state_dict'].items():
        assert torch.equal(v, saved['state_dict']['teacher.' + k])
    with pytest.raises(FileExistsError):
        extract_detector.main([cfg_path, ckpt_path, out])
    extract_detector.main(
        [cfg_path, ckpt_path, out, '--model', 'student', '--force'])
    assert torch.load(out)['meta']['extracted_model'] == 'student-EMA'
