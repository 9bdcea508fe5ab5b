"""The demo's comparison protocol, on a tiny generated clear-to-fog set."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmssda.apis import (aggregate_variants, eval_statistics, format_ablation,
                         format_table, merge_overrides, paired_differences,
                         prepare_data, pseudo_label_sweep, run_comparison,
                         select_best, summarize, variant_statistics,
                         write_report)
from mmssda.apis.adaptation_benchmark import drop_disabled, stage_config
from mmssda.engine.hooks.yolov5_iter_param_scheduler_hook import cosine_fn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = {
    stage: osp.join(REPO, 'configs', f'{recipe}_yolov5n_fog_shapes.py')
    for stage, recipe in [('burn_in', 'source_only'),
                          ('source_only', 'source_only'), ('ssda', 'ssda'),
                          ('oracle', 'oracle')]
}


def fake_run(student50, student, teacher50=0., teacher=0., pseudo=None):
    """Scalars of a run with three evaluations; the last is given."""
    scalars = [dict(iter=1, loss=2.0)]
    if pseudo is not None:
        scalars += [{
            'distill.num_pseudo': n,
            'distill.pseudo_precision': 0.5,
            'iter': i
        } for i, n in enumerate(pseudo)]
    for step, (s50, s, t50, t) in enumerate([
        (0.0, 0.0, 0.0, 0.0),
        (student50 + 0.3, student, teacher50, teacher),
        (student50, student, teacher50, teacher),
    ]):
        scalars.append({
            'student/coco/bbox_mAP_50': s50,
            'student/coco/bbox_mAP': s,
            'teacher/coco/bbox_mAP_50': t50,
            'teacher/coco/bbox_mAP': t,
            'step': step
        })
    return dict(checkpoint='x.pth', scalars=scalars, seconds=1.)


def test_eval_statistics():
    stats = eval_statistics([0.1, 0.5, 0.2, 0.3], last_k=3)
    assert stats == dict(
        last=0.3, best=0.5, mean_last=pytest.approx((0.5 + 0.2 + 0.3) / 3))
    # fewer evaluations than last_k: the mean of all of them
    assert eval_statistics([0.2, 0.4], 3)['mean_last'] == pytest.approx(0.3)
    with pytest.raises(ValueError):
        eval_statistics([], 3)


def test_summarize_last_best_mean_and_pseudo_labels():
    runs = dict(
        burn_in=fake_run(0.1, 0.05),
        source_only=fake_run(0.2, 0.1),
        ssda=fake_run(0.35, 0.2, teacher50=0.4, teacher=0.25,
                      pseudo=[0.5, 1.5]),
        oracle=fake_run(0.5, 0.3))
    summary = summarize(runs, last_k=2)
    table = summary['table']
    assert table['source-only']['mAP50'] == 0.2
    assert table['source-only']['mAP50_best'] == pytest.approx(0.5)
    assert table['source-only']['mAP50_mean_last'] == pytest.approx(0.35)
    assert table['SSDA teacher']['mAP50'] == 0.4
    assert table['oracle (labelled target)']['mAP'] == 0.3
    # gap by the mean of the last 2: (0.5 - 0.35) / (0.65 - 0.35)
    assert summary['gap_closed'] == pytest.approx(0.5)
    assert summary['num_pseudo'] == pytest.approx(1.0)
    assert summary['num_pseudo_start'] == 0.5
    assert summary['pseudo_precision'] == pytest.approx(0.5)
    assert summary['pseudo_recall'] is None
    text = format_table(summary)
    assert '| SSDA teacher | 0.400 | 0.400 | 0.400 |' in text
    assert '1.00 per target image' in text
    assert 'closes 50% of the' in text


def test_gap_is_undefined_when_oracle_is_not_better():
    runs = dict(
        burn_in=fake_run(0.1, 0.05),
        source_only=fake_run(0.3, 0.1),
        ssda=fake_run(0.35, 0.2),
        oracle=fake_run(0.3, 0.3))
    summary = summarize(runs)
    assert summary['gap_closed'] is None
    assert summary['num_pseudo'] is None  # never logged


def test_prepare_data_refuses_foreign_folder(tmp_path):
    (tmp_path / 'mine.txt').write_text('user data')
    with pytest.raises(FileExistsError, match='will not write'):
        prepare_data(str(tmp_path), seed=0)
    assert (tmp_path / 'mine.txt').read_text() == 'user data'


def fake_generator(write_winner_to=None, fail=False):
    """Stands in for generate_fog_shapes: writes a meta.json into its
    folder; optionally lands another process's data set first, or fails
    half-way."""

    def generate(out_dir, seed):
        os.makedirs(out_dir, exist_ok=True)
        meta = dict(name='fog_shapes', seed=seed)
        with open(osp.join(out_dir, 'meta.json'), 'w') as f:
            json.dump(meta, f)
        if fail:
            raise KeyboardInterrupt
        if write_winner_to is not None and \
                osp.abspath(out_dir) != osp.abspath(write_winner_to):
            os.makedirs(write_winner_to)
            with open(osp.join(write_winner_to, 'meta.json'), 'w') as f:
                json.dump(dict(name='fog_shapes', seed=7), f)
        return meta

    return generate


def test_prepare_data_lands_whole_or_not_at_all(tmp_path, monkeypatch):
    import mmssda.apis.adaptation_benchmark as module
    data_root = str(tmp_path / 'fog_shapes')
    monkeypatch.setattr(module, 'generate_fog_shapes',
                        fake_generator(fail=True))
    with pytest.raises(KeyboardInterrupt):
        prepare_data(data_root, seed=0)
    assert os.listdir(tmp_path) == []  # no partial data set, no temp folder
    monkeypatch.setattr(module, 'generate_fog_shapes', fake_generator())
    assert prepare_data(data_root, seed=3)['seed'] == 3
    assert os.listdir(tmp_path) == ['fog_shapes']


def test_prepare_data_uses_the_data_set_that_landed_first(
        tmp_path, monkeypatch):
    # another process (another seed of the same ablation) finishes first
    import mmssda.apis.adaptation_benchmark as module
    data_root = str(tmp_path / 'fog_shapes')
    monkeypatch.setattr(module, 'generate_fog_shapes',
                        fake_generator(write_winner_to=data_root))
    assert prepare_data(data_root, seed=0)['seed'] == 7
    assert os.listdir(tmp_path) == ['fog_shapes']


def test_stage_config_continues_one_schedule(tmp_path):
    burn = stage_config(
        CONFIGS['burn_in'],
        'burn_in',
        str(tmp_path),
        600,
        0,
        2,
        warmup_iters=100,
        schedule_iters=900)
    assert burn.train_cfg.max_iters == 600
    assert burn.default_hooks.param_scheduler.max_iters == 900
    assert not burn.resume
    ssda = stage_config(
        CONFIGS['ssda'],
        'ssda',
        str(tmp_path),
        300,
        0,
        3,
        warmup_iters=100,
        resume_from='burn.pth',
        start_iter=600,
        schedule_iters=900,
        overrides=dict(model=dict(distill_loss=dict(loss_weight=0.5))))
    assert ssda.resume and ssda.load_from == 'burn.pth'
    assert ssda.train_cfg.max_iters == 900
    assert ssda.train_cfg.val_interval == 100
    assert ssda.train_cfg.val_begin == 601
    assert ssda.default_hooks.param_scheduler.max_iters == 900
    assert ssda.model.distill_loss.loss_weight == 0.5
    teacher_hook, = [
        h for h in ssda.custom_hooks if h['type'] == 'SSDAMeanTeacherHook'
    ]
    assert teacher_hook['burn_in_iters'] == 600
    with pytest.raises(ValueError, match='not both'):
        stage_config(CONFIGS['ssda'], 'x', str(tmp_path), 3, 0, 1,
                     load_from='a.pth', resume_from='b.pth')


def test_merge_overrides_and_best_selection():
    merged = merge_overrides(
        dict(model=dict(distill_loss=dict(type='A', loss_weight=1.))),
        dict(model=dict(distill_loss=dict(loss_weight=2.))),
        dict(model=dict(consistency_loss=None)),
        {'model.distill_loss.conf_thr': 0.2})
    assert merged == dict(
        model=dict(
            distill_loss=dict(type='A', loss_weight=2., conf_thr=0.2),
            consistency_loss=None))

    def stats(*values):
        return {
            str(i): dict(mAP50_mean_last=v, mAP50=v, num_pseudo=None)
            for i, v in enumerate(values)
        }

    agg = aggregate_variants(
        dict(
            paper=stats(0.2, 0.4),
            a=stats(0.3, 0.5),
            b=stats(0.1, 0.2),
            c=stats(0.35, 0.35)))
    assert agg['paper']['mAP50_mean_last']['mean'] == pytest.approx(0.3)
    assert agg['paper']['mAP50_mean_last']['std'] == pytest.approx(0.1)
    assert agg['paper']['num_pseudo'] is None
    assert select_best(agg, 'paper', ['a', 'b', 'c']) == ['a', 'c']
    # nothing beats the reference: the single best candidate
    assert select_best(agg, 'a', ['b', 'c', 'paper']) == ['c']
    text = format_ablation(agg, dict(a='+ A'), last_k=3)
    assert '| + A | 0.400 ± 0.100 | 0.400 ± 0.100 |' in text
    assert text.count('\n') == 5  # header, rule, four variants
    # the paired column: each seed's difference to the reference's run on
    # the same seed, over the seeds both have
    results = dict(paper=stats(0.2, 0.4), a=stats(0.3, 0.35), b=stats(0.1))
    diffs = paired_differences(results, 'paper')
    assert diffs['a'] == {'0': pytest.approx(0.1), '1': pytest.approx(-0.05)}
    assert diffs['b'] == {'0': pytest.approx(-0.1)}
    assert 'paper' not in diffs
    text = format_ablation(
        aggregate_variants(results), dict(paper='paper recipe'), 3, diffs,
        'paper')
    rows = text.splitlines()
    assert rows[0].endswith('| seeds | minus paper, per seed |')
    assert rows[2].startswith('| paper recipe |')
    assert rows[2].endswith('| 2 | (reference) |')
    assert rows[3].endswith('| 2 | 0: +0.100, 1: -0.050 |')
    assert rows[4].endswith('| 1 | 0: -0.100 |')


def test_variant_statistics_reads_teacher_and_pseudo_labels():
    stats = variant_statistics(
        fake_run(0.35, 0.2, teacher50=0.4, pseudo=[1., 2.])['scalars'],
        last_k=2)
    assert stats['mAP50'] == 0.35
    assert stats['mAP50_mean_last'] == pytest.approx(0.5)
    assert stats['teacher_mAP50_mean_last'] == pytest.approx(0.4)
    assert stats['num_pseudo'] == pytest.approx(1.5)


def test_each_demo_config_runs_and_reports(tmp_path, monkeypatch):
    # the configs read data/fog_shapes relative to the working directory
    monkeypatch.chdir(tmp_path)
    from mmssda.datasets import generate_fog_shapes
    data_root = 'data/fog_shapes/'
    generate_fog_shapes(
        data_root, seed=0, num_source=6, num_target=6, num_val=4,
        img_size=96)
    assert prepare_data(data_root, seed=0)['name'] == 'fog_shapes'

    work_dir = str(tmp_path / 'work')
    # log every iteration; no worker processes (faster here)
    fast = {
        'default_hooks.logger.interval': 1,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False
    }
    runs = run_comparison(
        CONFIGS, work_dir, seed=0, burn_in_iters=4, adapt_iters=2, evals=2,
        overrides=fast)
    assert set(runs) == {'burn_in', 'source_only', 'ssda', 'oracle'}
    for stage, run in runs.items():
        assert osp.isfile(run['checkpoint']), stage
        assert run['offset'] == 0
    # one schedule: the adaptation stages resumed the burn-in at iteration 4
    # and ended at 6 with the learning rate of iteration 5 of a 6-iteration
    # schedule, not of a fresh one
    ckpt = torch.load(
        runs['ssda']['checkpoint'], map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == 6
    assert runs['ssda']['checkpoint'].endswith('iter_6.pth')
    lr = ckpt['optimizer']['param_groups'][0]['lr']
    assert lr == pytest.approx(0.01 * cosine_fn(0.2, 6)(5))
    # evaluated twice within the stage only
    steps = [s['step'] for s in runs['ssda']['scalars']
             if 'student/coco/bbox_mAP_50' in s]
    assert steps == [5, 6]
    # SSDA ran the distillation branch, source-only did not
    ssda_keys = set().union(*runs['ssda']['scalars'])
    source_keys = set().union(*runs['source_only']['scalars'])
    assert 'distill.loss_obj' in ssda_keys
    assert not any(k.startswith('distill.') for k in source_keys)
    # the same scalars went to TensorBoard
    assert glob.glob(
        osp.join(work_dir, 'ssda', '*', 'vis_data', 'events.out.tfevents*'))

    summary = write_report(runs, CONFIGS['ssda'], work_dir, data_root,
                           meta=dict(seed=0))
    for name in ('report.md', 'report.json', 'curves.png',
                 'pseudo_labels.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 0, name
    with open(osp.join(work_dir, 'report.json')) as f:
        saved = json.load(f)
    assert saved['seed'] == 0
    for row in saved['table'].values():
        assert 0 <= row['mAP50'] <= row['mAP50_best'] <= 1
    assert saved['table'] == summary['table']
    assert 'num_pseudo' in saved and 'pseudo_precision' in saved
    assert os.listdir(osp.join(work_dir, 'ssda'))

    # a rerun with reuse trains nothing; other settings are refused
    again = run_comparison(
        CONFIGS, work_dir, seed=0, burn_in_iters=4, adapt_iters=2, evals=2,
        reuse=True, overrides=fast)
    assert again['ssda']['seconds'] == runs['ssda']['seconds']
    with pytest.raises(ValueError, match='other settings'):
        run_comparison(
            CONFIGS, work_dir, seed=1, burn_in_iters=4, adapt_iters=2,
            evals=2, reuse=True, overrides=fast)

    sweep = pseudo_label_sweep(
        Config.fromfile(CONFIGS['ssda']), runs['burn_in']['checkpoint'],
        data_root, thresholds=(0.0, 0.5))
    assert [s['score_thr'] for s in sweep] == [0.0, 0.5]
    assert sweep[0]['num_pseudo'] >= sweep[1]['num_pseudo']
    assert sweep[0]['recall'] >= sweep[1]['recall']


def test_pseudo_label_picture_draws_candidates_below_threshold(
        tmp_path, monkeypatch):
    """Thick boxes: the pseudo-labels (score >= the recipe's threshold);
    thin: the candidates down to half of it; lower scores are not drawn."""
    from mmengine.structures import InstanceData

    from mmssda.apis import adaptation_benchmark as ab
    cfg = Config.fromfile(CONFIGS['ssda'])
    score_thr = cfg.model.semi_train_cfg.pseudo_label_cfg.score_thr
    img = np.zeros((32, 32, 3), np.uint8)
    scores = [score_thr + 0.1, score_thr * 0.75, score_thr * 0.3]
    loaded = {}

    def load_teacher(cfg, checkpoint, thr, teacher_from_student):
        loaded['thr'] = thr
        return object()

    def predict_pseudo(model, images):
        # the teacher keeps what scores at least the loading threshold
        keep = [s for s in scores if s >= loaded['thr']]
        return [
            InstanceData(
                bboxes=torch.tensor([[2., 2., 20., 20.]] * len(keep)),
                labels=torch.zeros(len(keep), dtype=torch.long),
                scores=torch.tensor(keep)) for _ in images
        ]

    titles = []
    draw = ab._draw

    def record(img, boxes, lines, thin=None, scale=2):
        titles.append((lines, None if thin is None else thin.tolist()))
        return draw(img, boxes, lines, thin, scale)

    monkeypatch.setattr(ab, '_load_teacher', load_teacher)
    monkeypatch.setattr(ab, '_predict_pseudo', predict_pseudo)
    monkeypatch.setattr(
        ab, '_target_images', lambda root, n: (['a.jpg', 'b.jpg'], [img] * 2,
                                               [img] * 2,
                                               [np.zeros((0, 5))] * 2))
    monkeypatch.setattr(ab, '_draw', record)
    out = str(tmp_path / 'pseudo.png')
    ab.draw_pseudo_labels(cfg, 'ckpt.pth', 'root', out, num_images=2)

    assert osp.isfile(out)
    teacher_titles = titles[0::2]
    assert len(teacher_titles) == 2
    lines, thin = teacher_titles[0]
    assert lines == [
        f'teacher, score >= {score_thr:.2f}: 1',
        f'thin: 1 more >= {score_thr / 2:.2f}'
    ]
    assert thin == [False, True]


def test_drop_disabled_keeps_a_turned_off_part_off():
    cfg = dict(
        model=dict(
            consistency_loss=None,
            distill_loss=dict(type='PseudoLabelDistillLoss', loss_weight=1.),
            detector=dict(init_cfg=None, type='YOLODetector')))
    overrides = dict(
        model=dict(
            # a setting of a part the config turns off: dropped
            consistency_loss=dict(reference_loss=1.1),
            distill_loss=dict(loss_weight=0.5),
            # a replacement is kept whole, its None entries included
            detector=dict(_delete_=True, type='X', init_cfg=dict(a=1))))
    assert drop_disabled(overrides, cfg) == dict(
        model=dict(
            distill_loss=dict(loss_weight=0.5),
            detector=dict(_delete_=True, type='X', init_cfg=dict(a=1))))
    # a whole part (with its type) turns it on
    whole = dict(model=dict(consistency_loss=dict(type='ConsistencyLoss')))
    assert drop_disabled(whole, cfg) == whole
