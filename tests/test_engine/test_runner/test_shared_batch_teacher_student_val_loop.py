"""SharedBatchTeacherStudentValLoop loads and preprocesses each validation
batch once and gives the metrics of mmdet's TeacherStudentValLoop."""
import copy
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.runner import Runner

from tests.conftest import CONFIG_DIR
from tests.test_models.utils import build_ssda

pytestmark = pytest.mark.usefixtures('cheap_config_text')


class ValRecorder(Hook):
    """Records the validation hooks called and ``predict_on`` at each
    iteration hook."""

    def __init__(self):
        self.calls, self.predict_on, self.metrics = [], [], None

    def before_val(self, runner):
        self.calls.append('before_val')

    def before_val_epoch(self, runner):
        self.calls.append('before_val_epoch')

    def before_val_iter(self, runner, batch_idx, data_batch=None):
        self.predict_on.append(runner.model.semi_test_cfg['predict_on'])

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None):
        # the outputs handed over are the model's that just predicted
        labels = outputs[0].pred_instances.labels
        expected = 0 if self.predict_on[-1] == 'teacher' else 1
        assert len(labels) and (labels == expected).all()

    def after_val_epoch(self, runner, metrics=None):
        self.calls.append('after_val_epoch')
        self.metrics = metrics

    def after_val(self, runner):
        self.calls.append('after_val')

    def before_test(self, runner):
        self.calls.append('before_test')


@pytest.fixture
def load_counter(monkeypatch):
    """Counts the images the data sets load (the dataloaders have no
    workers)."""
    counts = dict(images=0)
    prepare_data = BaseDataset.prepare_data

    def counting(self, idx):
        counts['images'] += 1
        return prepare_data(self, idx)

    monkeypatch.setattr(BaseDataset, 'prepare_data', counting)
    return counts


def run_val(model, loop, data_root, work_dir):
    """``runner.val()`` of ``model`` on the shapes set with ``loop``:
    COCO per-class and VOC AP50 metrics. Returns the metrics handed to
    ``after_val_epoch``, those ``run`` returned, the recording hook and
    the data preprocessor's calls."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_yolov5.py'))
    loader = copy.deepcopy(cfg.val_dataloader)
    loader.dataset.data_root = data_root + '/'
    recorder = ValRecorder()
    preprocessed = []
    handle = model.data_preprocessor.register_forward_hook(
        lambda *_: preprocessed.append(1))
    runner = Runner(
        model=model,
        work_dir=work_dir,
        val_dataloader=loader,
        val_evaluator=[
            dict(type='mmdet.CocoMetric', metric='bbox', classwise=True,
                 ann_file=osp.join(data_root, 'annotations', 'train.json')),
            dict(type='mmdet.VOCMetric', metric='mAP', iou_thrs=[0.5])
        ],
        val_cfg=dict(type=loop),
        custom_hooks=[recorder],
        default_scope='mmssda')
    try:
        returned = runner.val()
    finally:
        handle.remove()
    return recorder.metrics, returned, recorder, len(preprocessed)


def test_one_pass_same_metrics_as_mmdet_loop(shapes_root, tmp_path,
                                             load_counter,
                                             square_teacher_disc_student):
    # different predictions per model: the teacher finds squares only,
    # the student discs only
    model = square_teacher_disc_student

    theirs, _, _, their_preprocessed = run_val(
        model, 'mmdet.TeacherStudentValLoop', shapes_root,
        str(tmp_path / 'mmdet'))
    their_loads = load_counter['images']
    load_counter['images'] = 0
    ours, returned, recorder, our_preprocessed = run_val(
        model, 'SharedBatchTeacherStudentValLoop', shapes_root,
        str(tmp_path / 'ours'))

    assert ours == theirs and returned == ours
    for key in ('coco/bbox_mAP_50', 'pascal_voc/mAP'):
        assert ours[f'teacher/{key}'] > 0, key
        assert ours[f'student/{key}'] > 0, key
        assert ours[f'teacher/{key}'] != ours[f'student/{key}'], key
    # each image loaded and each batch preprocessed once, not once per
    # model
    assert their_loads == 12 and load_counter['images'] == 6
    assert their_preprocessed == 6 and our_preprocessed == 3
    # val hooks, per batch and model, predict_on restored
    assert recorder.calls == [
        'before_val', 'before_val_epoch', 'after_val_epoch', 'after_val'
    ]
    assert recorder.predict_on == ['teacher', 'student'] * 3
    assert model.semi_test_cfg['predict_on'] == 'student'


def test_rejects_a_model_without_teacher(shapes_root, tmp_path):
    model = build_ssda(seed=0).student
    with pytest.raises(TypeError, match='teacher'):
        run_val(model, 'SharedBatchTeacherStudentValLoop', shapes_root,
                str(tmp_path))
