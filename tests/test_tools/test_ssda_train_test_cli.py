"""tools/train.py then tools/test.py on the SSDA recipe, as a user runs them:
a few iterations on generated paired data, target metrics for both models."""
import os.path as osp

from tests.training_helpers import (CONFIG_DIR, REPO, make_fog_shapes,
                                    run_python)

CONFIG = osp.join(CONFIG_DIR, 'tiny_ssda_fog_shapes_eval.py')


def test_train_then_test_reports_teacher_and_student(tmp_path):
    make_fog_shapes(tmp_path)
    work_dir = str(tmp_path / 'work')
    train = osp.join(REPO, 'tools', 'train.py')
    log = run_python([train, CONFIG, '--work-dir', work_dir], cwd=tmp_path)
    # per-branch losses of all four streams were logged
    for key in ('source_real.loss_obj', 'source_fake.loss_obj',
                'distill.loss_obj', 'consistency.loss', 'distill.num_pseudo'):
        assert key in log, key
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)

    log = run_python([
        osp.join(REPO, 'tools', 'test.py'), CONFIG, ckpt, '--work-dir',
        str(tmp_path / 'test')
    ], cwd=tmp_path)
    for model in ('teacher', 'student'):
        for metric in ('coco/bbox_mAP_50', 'coco/bbox_mAP',
                       'pascal_voc/mAP'):
            assert f'{model}/{metric}' in log, (model, metric)
