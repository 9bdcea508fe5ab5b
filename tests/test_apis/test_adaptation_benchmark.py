"""The demo's comparison protocol, on a tiny generated clear-to-fog set."""
import glob
import json
import os
import os.path as osp

import pytest

from mmssda.apis import (format_table, prepare_data, run_comparison,
                         summarize, write_report)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = dict(
    burn_in='configs/source_only_yolov5n_fog_shapes.py',
    source_only='configs/source_only_yolov5n_fog_shapes.py',
    ssda='configs/ssda_yolov5n_fog_shapes.py',
    oracle='configs/oracle_yolov5n_fog_shapes.py')


def fake_run(student50, student, teacher50=0., teacher=0.):
    scalars = [
        dict(iter=1, loss=2.0),
        {
            'student/coco/bbox_mAP_50': 0.0,
            'student/coco/bbox_mAP': 0.0,
            'step': 1
        },
        {
            'student/coco/bbox_mAP_50': student50,
            'student/coco/bbox_mAP': student,
            'teacher/coco/bbox_mAP_50': teacher50,
            'teacher/coco/bbox_mAP': teacher,
            'step': 2
        },
    ]
    return dict(checkpoint='x.pth', scalars=scalars, seconds=1.)


def test_summarize_reads_last_validation_and_gap():
    runs = dict(
        burn_in=fake_run(0.1, 0.05),
        source_only=fake_run(0.2, 0.1),
        ssda=fake_run(0.35, 0.2, teacher50=0.4, teacher=0.25),
        oracle=fake_run(0.5, 0.3))
    summary = summarize(runs)
    table = summary['table']
    assert table['source-only'] == dict(mAP50=0.2, mAP=0.1)
    assert table['SSDA student-EMA'] == dict(mAP50=0.35, mAP=0.2)
    assert table['SSDA teacher'] == dict(mAP50=0.4, mAP=0.25)
    assert table['oracle (labelled target)'] == dict(mAP50=0.5, mAP=0.3)
    # (0.35 - 0.2) / (0.5 - 0.2)
    assert summary['gap_closed'] == pytest.approx(0.5)
    text = format_table(summary)
    assert '| SSDA teacher | 0.400 | 0.250 |' in text
    assert 'closes 50% of the' in text


def test_gap_is_undefined_when_oracle_is_not_better():
    runs = dict(
        burn_in=fake_run(0.1, 0.05),
        source_only=fake_run(0.3, 0.1),
        ssda=fake_run(0.35, 0.2),
        oracle=fake_run(0.3, 0.3))
    assert summarize(runs)['gap_closed'] is None


def test_prepare_data_refuses_foreign_folder(tmp_path):
    (tmp_path / 'mine.txt').write_text('user data')
    with pytest.raises(FileExistsError, match='will not write'):
        prepare_data(str(tmp_path), seed=0)
    assert (tmp_path / 'mine.txt').read_text() == 'user data'


def test_each_demo_config_runs_and_reports(tmp_path, monkeypatch):
    # the configs read data/fog_shapes relative to the working directory
    monkeypatch.chdir(tmp_path)
    from mmssda.datasets import generate_fog_shapes
    data_root = 'data/fog_shapes/'
    generate_fog_shapes(
        data_root, seed=0, num_source=6, num_target=6, num_val=4,
        img_size=96)
    assert prepare_data(data_root, seed=0)['name'] == 'fog_shapes'

    configs = {k: osp.join(REPO, v) for k, v in CONFIGS.items()}
    work_dir = str(tmp_path / 'work')
    runs = run_comparison(
        configs, work_dir, seed=0, burn_in_iters=2, adapt_iters=1, evals=1)
    assert set(runs) == {'burn_in', 'source_only', 'ssda', 'oracle'}
    for stage, run in runs.items():
        assert osp.isfile(run['checkpoint']), stage
    # SSDA ran the distillation branch, source-only did not
    ssda_keys = set().union(*runs['ssda']['scalars'])
    source_keys = set().union(*runs['source_only']['scalars'])
    assert 'distill.loss_obj' in ssda_keys
    assert not any(k.startswith('distill.') for k in source_keys)
    # the same scalars went to TensorBoard
    assert glob.glob(
        osp.join(work_dir, 'ssda', '*', 'vis_data', 'events.out.tfevents*'))

    summary = write_report(runs, configs['ssda'], work_dir, 2, data_root,
                           meta=dict(seed=0))
    for name in ('report.md', 'report.json', 'curves.png',
                 'pseudo_labels.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 0, name
    with open(osp.join(work_dir, 'report.json')) as f:
        saved = json.load(f)
    assert saved['seed'] == 0
    for row in saved['table'].values():
        assert 0 <= row['mAP50'] <= 1 and 0 <= row['mAP'] <= 1
    assert saved['table'] == summary['table']
    assert os.listdir(osp.join(work_dir, 'ssda'))
