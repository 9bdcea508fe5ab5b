"""TeacherStudentTestLoop scores the teacher and the student separately,
each exactly as a plain test of that detector alone would."""
import copy
import os.path as osp

import pytest
from mmdet.engine.runner import TeacherStudentValLoop
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmssda.engine.runner import (SharedBatchTeacherStudentValLoop,
                                  TeacherStudentTestLoop)
from tests.conftest import CONFIG_DIR
from tests.test_models.utils import build_ssda

pytestmark = pytest.mark.usefixtures('cheap_config_text')


class StageRecorder(Hook):
    """Records the stage hooks called and the metrics of the epoch."""

    def __init__(self):
        self.calls, self.metrics, self.predict_on = [], None, []

    def before_test(self, runner):
        self.calls.append('before_test')

    def before_test_epoch(self, runner):
        self.calls.append('before_test_epoch')

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model
        if hasattr(model, 'semi_test_cfg'):
            self.predict_on.append(model.semi_test_cfg['predict_on'])

    def after_test_epoch(self, runner, metrics=None):
        self.calls.append('after_test_epoch')
        self.metrics = metrics

    def after_test(self, runner):
        self.calls.append('after_test')

    def before_val(self, runner):
        self.calls.append('before_val')

    def after_val_epoch(self, runner, metrics=None):
        self.calls.append('after_val_epoch')


def run_test(model, loop, data_root, work_dir, name):
    """``runner.test()`` of ``model`` on the shapes set with ``loop``:
    COCO per-class and VOC AP50 metrics. Returns the metrics and the
    recording hook."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_yolov5.py'))
    loader = copy.deepcopy(cfg.test_dataloader)
    loader.dataset.data_root = data_root + '/'
    recorder = StageRecorder()
    runner = Runner(
        model=model,
        work_dir=work_dir,
        experiment_name=name,
        test_dataloader=loader,
        test_evaluator=[
            dict(type='mmdet.CocoMetric', metric='bbox', classwise=True,
                 ann_file=osp.join(data_root, 'annotations', 'train.json')),
            dict(type='mmdet.VOCMetric', metric='mAP', iou_thrs=[0.5])
        ],
        test_cfg=dict(type=loop),
        custom_hooks=[recorder],
        default_scope='mmssda')
    return runner.test(), recorder


def test_scores_teacher_and_student_like_plain_tests(
        shapes_root, tmp_path, square_teacher_disc_student):
    # different weights, and different predictions per class
    model = square_teacher_disc_student

    metrics, recorder = run_test(model, 'TeacherStudentTestLoop',
                                 shapes_root, str(tmp_path / 'ts'), 'ts')

    # each half is what a plain TestLoop gives on that detector alone
    for name in ('teacher', 'student'):
        alone, _ = run_test(
            copy.deepcopy(getattr(model, name)), 'TestLoop', shapes_root,
            str(tmp_path / name), name)
        ours = {
            key[len(name) + 1:]: value
            for key, value in metrics.items() if key.startswith(name + '/')
        }
        assert ours == alone, name
    # the two models were scored separately (the teacher finds squares
    # only, the student discs only): both score, differently
    for key in ('coco/bbox_mAP_50', 'pascal_voc/mAP'):
        assert metrics[f'teacher/{key}'] > 0, key
        assert metrics[f'student/{key}'] > 0, key
        assert metrics[f'teacher/{key}'] != metrics[f'student/{key}'], key

    # a test, not a validation: test stage hooks, the metrics handed to
    # after_test_epoch and returned, predict_on restored
    assert recorder.calls == [
        'before_test', 'before_test_epoch', 'after_test_epoch', 'after_test'
    ]
    assert recorder.metrics == metrics
    # one pass over the data: per batch, the teacher then the student, each
    # between test iteration hooks
    num_batches = len(recorder.predict_on) // 2
    assert num_batches == 3  # 6 images, batch size 2
    assert recorder.predict_on == ['teacher', 'student'] * num_batches
    assert model.semi_test_cfg['predict_on'] == 'student'


def test_reuses_the_shared_batch_val_loop():
    assert issubclass(TeacherStudentTestLoop,
                      SharedBatchTeacherStudentValLoop)
    assert issubclass(TeacherStudentTestLoop, TeacherStudentValLoop)


def test_rejects_a_model_without_teacher(shapes_root, tmp_path):
    model = build_ssda(seed=0).student
    with pytest.raises(TypeError, match='teacher'):
        run_test(model, 'TeacherStudentTestLoop', shapes_root,
                 str(tmp_path), 'plain')
