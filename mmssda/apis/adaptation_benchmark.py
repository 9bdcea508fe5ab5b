"""Compare domain-adaptation recipes on one task, from one burn-in.

The protocol behind ``tools/demo.py`` and
``tools/analysis_tools/benchmark_demo.py``:

1. **burn-in**: source-only training for ``burn_in_iters``. Its learning-rate
   schedule (YOLOv5's warmup and one-cycle cosine) is laid out over
   ``burn_in_iters + adapt_iters``: burn-in and adaptation share ONE
   schedule, and the burn-in stops in its middle.
2. **adaptation stages** (source-only, SSDA-YOLO, oracle, or any ablation
   variant: a config plus overrides) each *resume* the burn-in checkpoint
   with their own recipe and train to iteration
   ``burn_in_iters + adapt_iters``. Learning rate, SGD momentum buffers,
   student-EMA, data order and random states continue where the burn-in
   stopped, identically for every stage, so the stages differ by their
   recipe only. The teacher is re-initialised from the student at the
   burn-in iteration (``SSDAMeanTeacherHook.burn_in_iters``).

``continue_schedule=False`` restarts each stage instead (``load_from`` and a
fresh schedule that restarts at the peak learning rate, new optimizer state
and a new student-EMA), kept to measure what the continuation changes.

Every stage is scored on the target validation set ``evals`` times; each
report row gives the last evaluation, the best, and the mean of the last
``last_k`` (the least noisy of the three).
"""
import contextlib
import copy
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner, load_checkpoint

from mmssda.datasets import generate_fog_shapes
from mmssda.registry import MODELS

# (row label, stage, model) of the report table
ROWS = [('source-only', 'source_only', 'student'),
        ('SSDA student-EMA', 'ssda', 'student'),
        ('SSDA teacher', 'ssda', 'teacher'),
        ('oracle (labelled target)', 'oracle', 'student')]
MAP50 = '{}/coco/bbox_mAP_50'
MAP = '{}/coco/bbox_mAP'
#: Logged pseudo-label statistics (see ``SSDADetector``) and their names in
#: the summaries.
PSEUDO_KEYS = dict(
    num_pseudo='distill.num_pseudo',
    pseudo_precision='distill.pseudo_precision',
    pseudo_recall='distill.pseudo_recall')
#: The file :func:`run_stage` leaves in a finished stage's folder.
RESULT_FILE = 'result.json'


def prepare_data(data_root: str, seed: int) -> dict:
    """Generate the clear-to-fog benchmark into ``data_root`` once.

    An existing fog_shapes data set there is reused; any other non-empty
    folder is an error (nothing of the user's is overwritten). The data set
    is written into a temporary sibling folder and renamed to ``data_root``
    when complete, so an interrupted run leaves no partial data set and
    processes that start together (one per seed) all use the one that
    lands first.

    Returns:
        dict: The data set's ``meta.json``.
    """
    meta_file = osp.join(data_root, 'meta.json')
    if osp.isfile(meta_file):
        return _existing_fog_shapes(data_root)
    if osp.isdir(data_root) and os.listdir(data_root):
        raise FileExistsError(
            f'{data_root} exists and holds no fog_shapes meta.json; the demo '
            'will not write into it. Move it away and run again.')
    print(f'Writing the clear-to-fog data set to {data_root} ...')
    parent = osp.dirname(osp.abspath(data_root))
    os.makedirs(parent, exist_ok=True)
    tmp_root = tempfile.mkdtemp(prefix='.fog_shapes-', dir=parent)
    try:
        meta = generate_fog_shapes(tmp_root, seed=seed)
        try:
            # replaces an absent or empty data_root, never a non-empty one
            os.rename(tmp_root, data_root)
        except OSError:
            if not osp.isfile(meta_file):
                raise
            return _existing_fog_shapes(data_root)
        return meta
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def _existing_fog_shapes(data_root: str) -> dict:
    """The ``meta.json`` of the fog_shapes data set in ``data_root``."""
    meta_file = osp.join(data_root, 'meta.json')
    with open(meta_file) as f:
        meta = json.load(f)
    if meta.get('name') != 'fog_shapes':
        raise ValueError(f'{meta_file} is not a fog_shapes data set; '
                         'move it away or pick another --work-dir')
    print(f'Using the data set in {data_root} (seed {meta["seed"]})')
    return meta


def warmup_iters_of(burn_in_iters: int) -> int:
    """The warmup of a comparison's schedule: a quarter of the burn-in, at
    most 100 iterations."""
    return min(100, burn_in_iters // 4)


def _find_hook(hooks: list, hook_type: str) -> Optional[dict]:
    for hook in hooks:
        if hook.get('type') in (hook_type, f'mmssda.{hook_type}'):
            return hook
    return None


def stage_config(config: str,
                 stage: str,
                 work_dir: str,
                 iters: int,
                 seed: int,
                 evals: int,
                 load_from: Optional[str] = None,
                 warmup_iters: int = 0,
                 *,
                 resume_from: Optional[str] = None,
                 start_iter: int = 0,
                 schedule_iters: Optional[int] = None,
                 overrides: Optional[dict] = None) -> Config:
    """The config of one stage: its recipe with the comparison's schedule.

    Args:
        config (str): Config file of the recipe.
        stage (str): Stage name; the run goes to ``work_dir/stage``.
        work_dir (str): Folder of the comparison.
        iters (int): Training iterations of this stage.
        seed (int): Training seed.
        evals (int): Validations during the stage (the last at its end).
        load_from (str, optional): Checkpoint whose weights start the stage
            at iteration 0. Defaults to None.
        warmup_iters (int): Learning-rate warmup of the schedule.
            Defaults to 0.
        resume_from (str, optional): Checkpoint the stage resumes (weights,
            optimizer, schedule position, EMA, data order, random states)
            at iteration ``start_iter``; exclusive with ``load_from``.
            Defaults to None.
        start_iter (int): Iteration of ``resume_from``; the stage trains
            from it to ``start_iter + iters``, and the teacher is
            re-initialised from the student there. Defaults to 0.
        schedule_iters (int, optional): Length of the learning-rate
            schedule; the stage's last iteration if None. Defaults to None.
        overrides (dict, optional): Merged into the config first
            (nested dicts or dotted keys, as ``--cfg-options``), except
            the settings of a part the config turns off
            (:func:`drop_disabled`). Defaults to None.
    """
    if load_from is not None and resume_from is not None:
        raise ValueError('stage_config: give load_from or resume_from, '
                         'not both')
    if iters < 1 or evals < 1:
        raise ValueError(f'stage_config: iters ({iters}) and evals '
                         f'({evals}) must be >= 1')
    cfg = merge_stage_overrides(Config.fromfile(config), overrides)
    end = start_iter + iters
    cfg.work_dir = osp.join(work_dir, stage)
    cfg.load_from = resume_from or load_from
    cfg.resume = resume_from is not None
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'  # the progress bar talks; logs go to files
    cfg.train_cfg.max_iters = end
    cfg.train_cfg.val_interval = max(iters // evals, 1)
    cfg.train_cfg.val_begin = start_iter + 1  # this stage's iterations only
    scheduler = cfg.default_hooks.param_scheduler
    scheduler.warmup_iters = warmup_iters
    scheduler.max_iters = schedule_iters or end
    if resume_from is not None:
        teacher_hook = _find_hook(cfg.custom_hooks, 'SSDAMeanTeacherHook')
        if teacher_hook is not None:
            teacher_hook.burn_in_iters = start_iter
    cfg.default_hooks.checkpoint.update(
        interval=end, save_best=None, max_keep_ckpts=1)
    cfg.custom_hooks.append(dict(type='ProgressBarHook', desc=stage))
    # the base config names its visualizer 'visualizer'; a second run in the
    # same process would get the first run's instance and log into its dir
    cfg.visualizer.name = f'{stage}@{cfg.work_dir}@{time.time_ns()}'
    return cfg


def stage_signature(cfg: Config) -> str:
    """A digest of what decides a stage's result: model, data, schedule,
    seed and start checkpoint."""
    keys = ('model', 'train_dataloader', 'train_cfg', 'randomness',
            'load_from', 'resume', 'custom_hooks')
    parts = {k: cfg.get(k) for k in keys}
    parts['param_scheduler'] = cfg.default_hooks.get('param_scheduler')
    # the progress bar's description is only the stage's display name
    parts['custom_hooks'] = [
        h for h in parts['custom_hooks'] or []
        if h.get('type') != 'ProgressBarHook'
    ]
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def run_stage(cfg: Config, reuse: bool = False) -> dict:
    """Train one stage; return its last checkpoint and logged scalars.

    What training prints to stdout (pycocotools' summaries) goes to
    ``<work_dir>/stdout.log``; the progress bar draws on stderr. The runner
    is built before the redirection: its logger keeps the real stdout, not
    a file that is closed when the stage ends. The result is also written to
    ``<work_dir>/result.json``.

    Args:
        cfg (Config): See :func:`stage_config`.
        reuse (bool): Return the result of a finished earlier run of the
            stage (its ``result.json``) instead of training again.
            Defaults to False.
    """
    result_file = osp.join(cfg.work_dir, RESULT_FILE)
    signature = stage_signature(cfg)
    if reuse and osp.isfile(result_file):
        with open(result_file) as f:
            result = json.load(f)
        if result.get('signature') != signature:
            raise ValueError(
                f'{result_file} is the result of a run with other settings '
                '(config, iterations, seed or start checkpoint); pick another '
                'work dir or remove that stage folder')
        return result
    os.makedirs(cfg.work_dir, exist_ok=True)
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    with open(osp.join(cfg.work_dir, 'stdout.log'), 'w') as out, \
            contextlib.redirect_stdout(out):
        runner.train()
    scalars_file = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(scalars_file) as f:
        scalars = [json.loads(line) for line in f if line.strip()]
    result = dict(
        checkpoint=osp.join(cfg.work_dir, f'iter_{runner.max_iters}.pth'),
        scalars=scalars,
        seconds=time.perf_counter() - start,
        signature=signature)
    with open(result_file, 'w') as f:
        json.dump(result, f)
    return result


def run_burn_in(config: str,
                work_dir: str,
                seed: int,
                burn_in_iters: int,
                adapt_iters: int,
                evals: int,
                continue_schedule: bool = True,
                reuse: bool = False,
                overrides: Optional[dict] = None) -> dict:
    """The source-only burn-in every adaptation stage starts from.

    Args:
        config (str): Its config file (a source-only recipe).
        work_dir (str): Folder of the comparison; it runs in ``burn_in/``.
        seed (int): Training seed.
        burn_in_iters (int): Its iterations.
        adapt_iters (int): Iterations of the stages after it; with
            ``continue_schedule`` its schedule spans both.
        evals (int): Validations during the burn-in.
        continue_schedule (bool): See the module doc. Defaults to True.
        reuse (bool): See :func:`run_stage`. Defaults to False.
        overrides (dict, optional): Merged into the config.
            Defaults to None.

    Returns:
        dict: See :func:`run_stage`, plus ``offset`` 0.
    """
    schedule = burn_in_iters + adapt_iters if continue_schedule \
        else burn_in_iters
    run = run_stage(
        stage_config(
            config,
            'burn_in',
            work_dir,
            burn_in_iters,
            seed,
            evals,
            warmup_iters=warmup_iters_of(burn_in_iters),
            schedule_iters=schedule,
            overrides=overrides),
        reuse=reuse)
    run['offset'] = 0
    return run


def run_adaptation(config: str,
                   stage: str,
                   work_dir: str,
                   burn_in_checkpoint: str,
                   seed: int,
                   burn_in_iters: int,
                   adapt_iters: int,
                   evals: int,
                   overrides: Optional[dict] = None,
                   continue_schedule: bool = True,
                   reuse: bool = False) -> dict:
    """One adaptation stage continued from the burn-in (see the module doc).

    Args:
        config (str): Config file of the stage's recipe.
        stage (str): Its name and subfolder of ``work_dir``.
        work_dir (str): Folder of the comparison.
        burn_in_checkpoint (str): The burn-in's last checkpoint.
        seed (int): Training seed.
        burn_in_iters (int): Iterations of the burn-in (the checkpoint's).
        adapt_iters (int): Iterations of this stage.
        evals (int): Validations during this stage.
        overrides (dict, optional): Merged into the config.
            Defaults to None.
        continue_schedule (bool): Resume the burn-in run (True) or start
            from its weights with a fresh schedule (False).
            Defaults to True.
        reuse (bool): See :func:`run_stage`. Defaults to False.

    Returns:
        dict: See :func:`run_stage`, plus ``offset``: what to add to the
        stage's logged iterations to place them after the burn-in.
    """
    if continue_schedule:
        cfg = stage_config(
            config,
            stage,
            work_dir,
            adapt_iters,
            seed,
            evals,
            warmup_iters=warmup_iters_of(burn_in_iters),
            resume_from=burn_in_checkpoint,
            start_iter=burn_in_iters,
            schedule_iters=burn_in_iters + adapt_iters,
            overrides=overrides)
    else:
        cfg = stage_config(
            config,
            stage,
            work_dir,
            adapt_iters,
            seed,
            evals,
            load_from=burn_in_checkpoint,
            overrides=overrides)
    run = run_stage(cfg, reuse=reuse)
    run['offset'] = 0 if continue_schedule else burn_in_iters
    return run


def run_comparison(configs: Dict[str, str],
                   work_dir: str,
                   seed: int,
                   burn_in_iters: int,
                   adapt_iters: int,
                   evals: int,
                   continue_schedule: bool = True,
                   reuse: bool = False,
                   burn_in_evals: Optional[int] = None,
                   overrides: Optional[dict] = None) -> Dict[str, dict]:
    """Train the four stages: burn-in, then source-only, SSDA and oracle.

    Args:
        configs (dict[str, str]): Config files of the stages ``burn_in``,
            ``source_only``, ``ssda`` and ``oracle``.
        work_dir (str): Folder of the comparison; one subfolder per stage.
        seed (int): Training seed of every stage.
        burn_in_iters (int): Source-only iterations the adaptation starts
            from.
        adapt_iters (int): Iterations of source-only, SSDA and oracle
            after it.
        evals (int): Validations per stage.
        continue_schedule (bool): See the module doc. Defaults to True.
        reuse (bool): Skip stages that finished in an earlier run.
            Defaults to False.
        burn_in_evals (int, optional): Validations of the burn-in;
            ``evals`` if None. Defaults to None.
        overrides (dict, optional): Merged into every stage's config.
            Defaults to None.

    Returns:
        dict[str, dict]: Per stage, ``checkpoint`` (its last), ``scalars``
        (what it logged), ``seconds`` and ``offset`` (see
        :func:`run_adaptation`).
    """
    work_dir = osp.abspath(work_dir)
    runs = dict(
        burn_in=run_burn_in(configs['burn_in'], work_dir, seed,
                            burn_in_iters, adapt_iters, burn_in_evals
                            or evals, continue_schedule, reuse, overrides))
    for stage in ('source_only', 'ssda', 'oracle'):
        runs[stage] = run_adaptation(
            configs[stage],
            stage,
            work_dir,
            runs['burn_in']['checkpoint'],
            seed,
            burn_in_iters,
            adapt_iters,
            evals,
            overrides=overrides,
            continue_schedule=continue_schedule,
            reuse=reuse)
    return runs


def logged_values(scalars: List[dict], key: str) -> List[float]:
    """Every logged value of ``key``, in order."""
    return [float(s[key]) for s in scalars if key in s]


def last_value(scalars: List[dict], key: str) -> float:
    values = logged_values(scalars, key)
    if not values:
        raise KeyError(f'{key} was never logged')
    return values[-1]


def eval_statistics(values: Sequence[float], last_k: int = 3) -> dict:
    """``last``, ``best`` and ``mean_last`` (mean of the last ``last_k``) of
    a series of evaluations."""
    if not values:
        raise ValueError('no evaluation to summarise')
    if last_k < 1:
        raise ValueError(f'last_k must be >= 1, got {last_k}')
    return dict(
        last=float(values[-1]),
        best=float(max(values)),
        mean_last=float(np.mean(values[-last_k:])))


def metric_row(scalars: List[dict], model: str, last_k: int = 3) -> dict:
    """Target mAP@0.5 and mAP@0.5:0.95 of ``model`` ('student'/'teacher'):
    ``mAP50``/``mAP`` (last), ``*_best`` and ``*_mean_last``."""
    row = dict()
    for name, key in (('mAP50', MAP50), ('mAP', MAP)):
        values = logged_values(scalars, key.format(model))
        if not values:
            raise KeyError(f'{key.format(model)} was never logged')
        stats = eval_statistics(values, last_k)
        row[name] = stats['last']
        row[f'{name}_best'] = stats['best']
        row[f'{name}_mean_last'] = stats['mean_last']
    return row


def pseudo_label_summary(scalars: List[dict]) -> dict:
    """The teacher's pseudo-labels over an SSDA stage, from its logs.

    Returns:
        dict: ``num_pseudo`` (mean pseudo-boxes per target image over the
        stage), ``num_pseudo_start`` (the first logged window, right after
        the burn-in), ``pseudo_precision`` and ``pseudo_recall`` (means; None
        when never logged: no pseudo-box or no analysis labels).
    """
    summary = dict()
    for name, key in PSEUDO_KEYS.items():
        values = logged_values(scalars, key)
        summary[name] = float(np.mean(values)) if values else None
        if name == 'num_pseudo':
            summary['num_pseudo_start'] = values[0] if values else None
    return summary


def summarize(runs: Dict[str, dict], last_k: int = 3) -> dict:
    """Target mAPs per report row, the teacher's pseudo-labels, and the share
    of the source-only -> oracle gap SSDA closes (by the mean of the last
    ``last_k`` mAP@0.5)."""
    table = {
        label: metric_row(runs[stage]['scalars'], model, last_k)
        for label, stage, model in ROWS
    }
    src = table['source-only']['mAP50_mean_last']
    oracle = table['oracle (labelled target)']['mAP50_mean_last']
    ssda = table['SSDA student-EMA']['mAP50_mean_last']
    gap_closed = (ssda - src) / (oracle - src) if oracle > src else None
    summary = dict(
        table=table,
        last_k=last_k,
        gap_closed=gap_closed,
        seconds={stage: run['seconds']
                 for stage, run in runs.items()})
    summary.update(pseudo_label_summary(runs['ssda']['scalars']))
    return summary


def _fmt(value: Optional[float], spec: str = '.3f') -> str:
    return 'n/a' if value is None else format(value, spec)


def format_table(summary: dict) -> str:
    k = summary.get('last_k', 3)
    lines = [
        '| model (scored on foggy target val) | mAP@0.5 last | best | '
        f'mean of last {k} | mAP@0.5:0.95 last | mean of last {k} |',
        '|---|---|---|---|---|---|'
    ]
    for label, row in summary['table'].items():
        lines.append(f'| {label} | {row["mAP50"]:.3f} | '
                     f'{row["mAP50_best"]:.3f} | '
                     f'{row["mAP50_mean_last"]:.3f} | {row["mAP"]:.3f} | '
                     f'{row["mAP_mean_last"]:.3f} |')
    if summary.get('num_pseudo') is not None:
        lines += [
            '', 'Teacher pseudo-labels during SSDA: '
            f'{summary["num_pseudo"]:.2f} per target image (first logged '
            f'window: {_fmt(summary["num_pseudo_start"], ".2f")}), precision '
            f'{_fmt(summary["pseudo_precision"])}, recall '
            f'{_fmt(summary["pseudo_recall"])} (IoU 0.5, same class).'
        ]
    if summary['gap_closed'] is not None:
        lines.append('')
        lines.append('SSDA (student-EMA) closes '
                     f'{100 * summary["gap_closed"]:.0f}% of the '
                     f'source-only -> oracle mAP@0.5 gap (mean of the last '
                     f'{k} evaluations).')
    return '\n'.join(lines)


def plot_curves(runs: Dict[str, dict], out_file: str) -> None:
    """Loss and target mAP@0.5 of every stage against iterations."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(12, 4.5))
    for stage, run in runs.items():
        offset = run.get('offset', 0)
        train = [s for s in run['scalars'] if 'loss' in s and 'iter' in s]
        ax_loss.plot([s['iter'] + offset for s in train],
                     [s['loss'] for s in train], label=stage, lw=1)
        for model, style in (('student', '-o'), ('teacher', '--x')):
            if stage != 'ssda' and model == 'teacher':
                continue
            key = MAP50.format(model)
            val = [s for s in run['scalars'] if key in s]
            ax_map.plot([s['step'] + offset for s in val],
                        [s[key] for s in val], style,
                        label=f'{stage} {model}')
    ax_loss.set(title='training loss (sum of all terms)', xlabel='iteration',
                yscale='log')
    ax_map.set(title='target (fog) val mAP@0.5', xlabel='iteration')
    ax_loss.legend()
    ax_map.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)


def _read_labels(label_file: str, size: tuple) -> np.ndarray:
    """YOLO txt boxes as pixel (x1, y1, x2, y2, cls)."""
    h, w = size
    rows = np.loadtxt(label_file, ndmin=2) if osp.isfile(label_file) and \
        osp.getsize(label_file) else np.zeros((0, 5))
    cls, cx, cy, bw, bh = rows.T
    return np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h,
                     (cx + bw / 2) * w, (cy + bh / 2) * h, cls], axis=1)


def _target_images(data_root: str, num_images: Optional[int]) -> tuple:
    """Names, real (foggy) and fake images and labels of the target set."""
    names = sorted(os.listdir(osp.join(data_root, 'target', 'images')))
    names = names[:num_images] if num_images else names
    real = [cv2.imread(osp.join(data_root, 'target', 'images', n))
            for n in names]
    fake = [cv2.imread(osp.join(data_root, 'target_fake', 'images', n))
            for n in names]
    labels = [
        _read_labels(
            osp.join(data_root, 'target', 'labels',
                     osp.splitext(n)[0] + '.txt'), img.shape[:2])
        for n, img in zip(names, real)
    ]
    return names, real, fake, labels


def _load_teacher(cfg: Config, checkpoint: str, score_thr: float,
                  teacher_from_student: bool):
    """SSDADetector from ``checkpoint`` with pseudo-label ``score_thr``,
    built in the config's scope whatever the current default scope is (no
    runner set it when every stage was reused)."""
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmssda')):
        model = MODELS.build(cfg.model)
    model.semi_train_cfg.pseudo_label_cfg.score_thr = score_thr
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    if teacher_from_student:
        model.sync_teacher_with_student()
    model.eval()
    return model


def _predict_pseudo(model, images: List[np.ndarray],
                    batch_size: int = 16) -> list:
    """The teacher's pseudo-labels (InstanceData) of BGR images."""
    results = []
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        samples = [DetDataSample(metainfo=dict(img_shape=img.shape[:2]))
                   for img in chunk]
        data = model.data_preprocessor(
            dict(inputs=[torch.from_numpy(img).permute(2, 0, 1)
                         for img in chunk],
                 data_samples=samples), training=False)
        pseudo, _ = model.get_pseudo_instances(data['inputs'],
                                               data['data_samples'])
        results += [p.gt_instances for p in pseudo]
    return results


def pseudo_label_sweep(cfg: Config,
                       checkpoint: str,
                       data_root: str,
                       thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4,
                                                      0.5),
                       num_images: Optional[int] = None,
                       teacher_from_student: bool = True) -> List[dict]:
    """Pseudo-labels per image and their precision/recall by threshold.

    The teacher predicts on the target-fake images (whole images, no
    augmentation), as in training with ``semi_train_cfg.pseudo_label_cfg``
    at each score threshold; its boxes are matched to the target labels
    (same class, IoU ``analysis_iou_thr``). The tool to choose a burn-in
    and a threshold under which the teacher has something to distil.

    Args:
        cfg (Config): An SSDA config (model and pseudo-label settings).
        checkpoint (str): A checkpoint of it (or of a source-only run).
        data_root (str): A fog_shapes data set.
        thresholds (Sequence[float]): Score thresholds.
        num_images (int, optional): The first images only. Defaults to
            None (all).
        teacher_from_student (bool): Use the checkpoint's student (the
            student-EMA) as the teacher, as the teacher of an adaptation
            stage starts (burn-in checkpoints). Defaults to True.

    Returns:
        list[dict]: Per threshold ``score_thr``, ``num_pseudo`` (per image),
        ``precision`` (None without boxes) and ``recall``.
    """
    model = _load_teacher(cfg, checkpoint, min(thresholds),
                          teacher_from_student)
    iou_thr = model.semi_train_cfg.analysis_iou_thr
    _, _, fake, labels = _target_images(data_root, num_images)
    pseudo = _predict_pseudo(model, fake)
    gts = [
        dict(bboxes=torch.from_numpy(gt[:, :4]).float(),
             labels=torch.from_numpy(gt[:, 4]).long()) for gt in labels
    ]
    num_gt = sum(len(gt) for gt in labels)
    sweep = []
    for thr in thresholds:
        kept = [p[p.scores >= thr] for p in pseudo]
        num = sum(len(p) for p in kept)
        matched = sum(
            model._count_matches(p, _Boxes(**g), iou_thr)
            for p, g in zip(kept, gts))
        sweep.append(
            dict(
                score_thr=float(thr),
                num_pseudo=num / max(len(kept), 1),
                precision=matched / num if num else None,
                recall=matched / num_gt if num_gt else None))
    return sweep


class _Boxes:
    """The two fields of an InstanceData that matching reads."""

    def __init__(self, bboxes: torch.Tensor, labels: torch.Tensor) -> None:
        self.bboxes = bboxes
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)


#: BGR colours of the classes in the pictures
COLORS = [(40, 40, 230), (40, 170, 40), (230, 120, 20), (160, 40, 160)]


def _titled(img: np.ndarray, lines: List[str], scale: int) -> np.ndarray:
    """``img`` enlarged ``scale`` times under a white banner of text."""
    img = cv2.resize(img, None, fx=scale, fy=scale,
                     interpolation=cv2.INTER_NEAREST)
    banner = np.full((8 + 20 * len(lines), img.shape[1], 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(banner, line, (6, 20 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([banner, img])


def _draw(img: np.ndarray,
          boxes: np.ndarray,
          lines: List[str],
          thin: Optional[np.ndarray] = None,
          scale: int = 2) -> np.ndarray:
    """Boxes (x1, y1, x2, y2, cls) coloured by class on ``img`` enlarged
    ``scale`` times, under the title ``lines``; ``thin`` marks boxes drawn
    with a 1 px line."""
    big = _titled(img, lines, scale)
    top = big.shape[0] - img.shape[0] * scale
    thin = np.zeros(len(boxes), bool) if thin is None else thin
    for (x1, y1, x2, y2, cls), is_thin in zip(boxes, thin):
        cv2.rectangle(big, (int(x1 * scale), int(y1 * scale) + top),
                      (int(x2 * scale), int(y2 * scale) + top),
                      COLORS[int(cls) % len(COLORS)], 1 if is_thin else 2)
    return big


def draw_pseudo_labels(cfg: Config,
                       checkpoint: str,
                       data_root: str,
                       out_file: str,
                       num_images: int = 6,
                       candidate_thr: Optional[float] = None) -> None:
    """Target images: the teacher's pseudo-boxes beside the ground truth.

    The teacher sees the target-fake image, as in training, with the
    pseudo-label settings of ``semi_train_cfg``; its boxes are drawn on the
    real foggy image: thick above the pseudo-label score threshold (what the
    student trains on), thin for the candidates between ``candidate_thr``
    and that threshold (what a lower threshold would add). Images are
    enlarged twice, under a title that says what is drawn, with a legend of
    the class colours on top.

    Args:
        candidate_thr (float, optional): Lowest score drawn. Defaults to
            None: half the pseudo-label score threshold.
    """
    score_thr = cfg.model.semi_train_cfg.pseudo_label_cfg.score_thr
    if candidate_thr is None:
        candidate_thr = score_thr / 2
    # Greedy NMS never lets a lower-scored box suppress a higher one, so the
    # boxes above score_thr are exactly the pseudo-labels of training.
    model = _load_teacher(cfg, checkpoint, min(candidate_thr, score_thr),
                          teacher_from_student=False)
    names, real, fake, labels = _target_images(data_root, num_images)
    pseudo = _predict_pseudo(model, fake)
    pairs = []
    for name, img, inst, gt in zip(names, real, pseudo, labels):
        boxes = torch.cat([inst.bboxes, inst.labels[:, None].float()],
                          1).numpy()
        below = (inst.scores < score_thr).numpy()
        pairs.append(np.hstack([
            _draw(img, boxes, [
                f'teacher, score >= {score_thr:.2f}: {(~below).sum()}',
                f'thin: {below.sum()} more >= {candidate_thr:.2f}'
            ], below),
            np.full((img.shape[0] * 2 + 48, 4, 3), 255, np.uint8),
            _draw(img, gt, [f'ground truth: {len(gt)}', name]),
            np.full((img.shape[0] * 2 + 48, 16, 3), 255, np.uint8)
        ]))
    # two pairs per row
    rows = [np.hstack(pairs[i:i + 2]) for i in range(0, len(pairs) - 1, 2)]
    picture = np.vstack(rows)
    classes = cfg.get('metainfo', {}).get('classes', ())
    legend = np.full((30, picture.shape[1], 3), 255, np.uint8)
    x = 6
    for i, name in enumerate(['classes:', *classes]):
        color = (0, 0, 0) if i == 0 else COLORS[(i - 1) % len(COLORS)]
        cv2.putText(legend, name, (x, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    color, 2 if i else 1, cv2.LINE_AA)
        x += 14 * len(name) + 12
    cv2.imwrite(out_file, np.vstack([legend, picture]))


def write_report(runs: Dict[str, dict],
                 ssda_config: str,
                 work_dir: str,
                 data_root: str,
                 meta: Optional[dict] = None,
                 last_k: int = 3,
                 overrides: Optional[dict] = None) -> dict:
    """Write report.md/json, curves.png and pseudo_labels.png; print it.

    Args:
        runs (dict): Output of :func:`run_comparison`.
        ssda_config (str): Config of the SSDA stage (for its teacher).
        work_dir (str): Where the report goes.
        data_root (str): The data set (target images for the pictures).
        meta (dict, optional): Settings recorded in report.json.
        last_k (int): Evaluations averaged in each row's mean.
            Defaults to 3.
        overrides (dict, optional): The overrides the stages ran with
            (:func:`run_comparison`), merged into ``ssda_config``.
            Defaults to None.

    Returns:
        dict: The summary (see :func:`summarize`) with ``meta``.
    """
    summary = summarize(runs, last_k)
    ssda_cfg = merge_stage_overrides(Config.fromfile(ssda_config), overrides)
    summary.update(meta or {})
    table = format_table(summary)
    plot_curves(runs, osp.join(work_dir, 'curves.png'))
    draw_pseudo_labels(ssda_cfg,
                       runs['ssda']['checkpoint'], data_root,
                       osp.join(work_dir, 'pseudo_labels.png'))
    with open(osp.join(work_dir, 'report.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    with open(osp.join(work_dir, 'report.md'), 'w') as f:
        f.write('# SSDA-YOLO demo: clear -> fog\n\n'
                f'{table}\n\n![curves](curves.png)\n\n'
                '![teacher pseudo-labels vs ground truth]'
                '(pseudo_labels.png)\n')
    print('\n' + table)
    print(f'\nReport, curves and pseudo-label pictures: {work_dir}')
    return summary


# ============================ ablation ======================================
#: The keys of ``model`` that make up the detector of an SSDA config.
DETECTOR_KEYS = ('detector', 'data_preprocessor')
#: Outside ``model``, what a detector config may change of the recipe it is
#: put into (:func:`detector_overrides`): its own optimizer and the
#: learning-rate hook's settings.
OPTIMIZER_KEYS = ('optim_wrapper', 'default_hooks')


def _difference(new, old):
    """The entries of the config tree ``new`` that differ from ``old``
    (dicts recursively, anything else whole); None when none does."""
    if isinstance(new, dict) and isinstance(old, dict):
        diff = {}
        for key, value in new.items():
            if key not in old:
                diff[key] = copy.deepcopy(value)
            else:
                sub = _difference(value, old[key])
                if sub is not None:
                    diff[key] = sub
        return diff or None
    return None if new == old else copy.deepcopy(new)


def detector_overrides(config: str, base: str) -> dict:
    """Overrides that put the detector of the SSDA config ``config`` into
    the recipe of another SSDA config.

    ``config`` must be ``base`` with another detector: the overrides are
    its ``model.detector`` and ``model.data_preprocessor``
    (:data:`DETECTOR_KEYS`), each replacing the other config's whole
    (``_delete_``), and whatever else of ``model`` it changes from
    ``base`` (e.g. the consistency loss's ``reference_loss`` for the
    head's loss scale). A detector trained with its own optimizer (e.g.
    RTMDet's AdamW) may also change the ``optim_wrapper`` (which then
    replaces the other config's whole) and the settings of
    ``default_hooks.param_scheduler`` (:data:`OPTIMIZER_KEYS`). Data,
    schedule length and the rest stay the other config's.

    Raises:
        ValueError: ``config`` changes something else or removes a part of
            ``base``'s model.
    """
    cfg, base_cfg = Config.fromfile(config), Config.fromfile(base)
    model = cfg.model.to_dict()
    base_model = base_cfg.model.to_dict()
    allowed = {'model', *DETECTOR_KEYS, *OPTIMIZER_KEYS}
    outside = sorted(
        key for key in set(cfg) | set(base_cfg)
        if key not in allowed and cfg.get(key) != base_cfg.get(key))
    hooks = _difference(
        cfg.to_dict().get('default_hooks', {}),
        base_cfg.to_dict().get('default_hooks', {})) or {}
    outside += sorted(f'default_hooks.{key}' for key in hooks
                      if key != 'param_scheduler')
    removed = sorted(set(base_model) - set(model))
    if outside or removed:
        what = [f'changes {", ".join(outside)}'] if outside else []
        what += [f'removes model.{", model.".join(removed)}'] if removed \
            else []
        raise ValueError(f'{config} is not {base} with another detector: '
                         f'it {" and ".join(what)}')
    overrides = {
        key: dict(model[key], _delete_=True)
        for key in DETECTOR_KEYS
    }
    rest = _difference({k: v for k, v in model.items()
                        if k not in DETECTOR_KEYS}, base_model)
    overrides.update(rest or {})
    overrides = dict(model=overrides)
    if cfg.optim_wrapper != base_cfg.optim_wrapper:
        overrides['optim_wrapper'] = dict(
            cfg.optim_wrapper.to_dict(), _delete_=True)
    if 'param_scheduler' in hooks:
        overrides['default_hooks'] = dict(
            param_scheduler=hooks['param_scheduler'])
    return overrides


def drop_disabled(overrides: dict, cfg: dict) -> dict:
    """``overrides`` without the settings of parts ``cfg`` turns off: a
    dict merged into a None entry (e.g. ``consistency_loss`` of a
    source-only stage) that is not a whole part (no ``type``). A
    replacement (``_delete_``) is kept whole."""
    kept = {}
    for key, value in overrides.items():
        if isinstance(value, dict) and key in cfg:
            if cfg[key] is None and 'type' not in value:
                continue
            if isinstance(cfg[key], dict) and not value.get('_delete_'):
                value = drop_disabled(value, cfg[key])
        kept[key] = value
    return kept


def merge_stage_overrides(cfg: Config,
                          overrides: Optional[dict]) -> Config:
    """Merge ``overrides`` (nested or dotted keys) into ``cfg`` in place,
    except the settings of parts ``cfg`` turns off
    (:func:`drop_disabled`); return ``cfg``."""
    if overrides:
        cfg.merge_from_dict(
            drop_disabled(merge_overrides(overrides), cfg.to_dict()))
    return cfg


def merge_overrides(*overrides: Optional[dict]) -> dict:
    """Deep-merge config overrides left to right (later keys win; a dict
    merges into a dict, anything else replaces). Dotted keys
    (``'model.distill_loss.loss_weight'``, as from ``--cfg-options``) are
    nested first."""

    def nest(key: str, value):
        for part in reversed(key.split('.')[1:]):
            value = {part: value}
        return key.split('.')[0], value

    def merge(into: dict, new: dict) -> dict:
        for key, value in new.items():
            key, value = nest(key, value)
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                into[key] = merge(dict(into[key]), value)
            else:
                into[key] = copy.deepcopy(value)
        return into

    merged = dict()
    for override in overrides:
        merge(merged, override or {})
    return merged


def variant_statistics(scalars: List[dict], last_k: int = 3) -> dict:
    """One ablation run's numbers: the student-EMA's target mAPs (see
    :func:`metric_row`), the teacher's mAP@0.5 mean of the last ``last_k``
    when evaluated, and :func:`pseudo_label_summary`."""
    stats = metric_row(scalars, 'student', last_k)
    teacher = logged_values(scalars, MAP50.format('teacher'))
    stats['teacher_mAP50_mean_last'] = eval_statistics(
        teacher, last_k)['mean_last'] if teacher else None
    stats.update(pseudo_label_summary(scalars))
    return stats


def aggregate_variants(results: Dict[str, Dict[str, dict]]) -> dict:
    """Mean and spread over seeds of every statistic of every variant.

    Args:
        results (dict): ``{variant: {seed: variant_statistics}}``.

    Returns:
        dict: ``{variant: {stat: dict(mean, std, min, max, n)}}``; a
        statistic that is None in some seeds is aggregated over the others
        (``n`` says over how many), and is None where it never exists.
    """
    agg = dict()
    for variant, per_seed in results.items():
        names = set().union(*(s.keys() for s in per_seed.values()))
        agg[variant] = dict()
        for name in sorted(names):
            values = [
                s[name] for s in per_seed.values()
                if s.get(name) is not None
            ]
            agg[variant][name] = dict(
                mean=float(np.mean(values)),
                std=float(np.std(values)),
                min=float(np.min(values)),
                max=float(np.max(values)),
                n=len(values)) if values else None
    return agg


def select_best(agg: dict,
                reference: str,
                candidates: Sequence[str],
                key: str = 'mAP50_mean_last') -> List[str]:
    """The candidate variants whose mean ``key`` beats ``reference``'s.

    If none does, the single best candidate (so that a "best combination"
    always has something to combine); an empty list if there is no
    candidate with results.
    """
    ref = agg[reference][key]['mean']
    scored = [(agg[c][key]['mean'], c) for c in candidates
              if c in agg and agg[c].get(key) is not None]
    better = [c for score, c in scored if score > ref]
    if better:
        return better
    return [max(scored)[1]] if scored else []


def paired_differences(results: dict,
                       reference: str,
                       key: str = 'mAP50_mean_last') -> Dict[str, dict]:
    """Per variant and seed, ``key`` minus the reference's on the same seed
    (the same burn-in): ``{variant: {seed: difference}}``, over the seeds
    both have; the reference itself and variants without common seeds are
    left out."""
    ref = results.get(reference, {})
    diffs = dict()
    for variant, per_seed in results.items():
        if variant == reference:
            continue
        common = [
            seed for seed in per_seed if seed in ref
            and per_seed[seed].get(key) is not None
            and ref[seed].get(key) is not None
        ]
        if common:
            diffs[variant] = {
                seed: per_seed[seed][key] - ref[seed][key]
                for seed in common
            }
    return diffs


def format_ablation(agg: dict,
                    labels: Optional[Dict[str, str]] = None,
                    last_k: int = 3,
                    differences: Optional[Dict[str, dict]] = None,
                    reference: Optional[str] = None) -> str:
    """The ablation table: per variant the student-EMA's target mAP@0.5
    (mean ± std over seeds of the mean of the last ``last_k`` evaluations,
    of the last one and of the best one), the teacher's pseudo-boxes per
    image and their precision, and the number of seeds; with
    ``differences`` (:func:`paired_differences`) a last column of each
    seed's difference to ``reference`` (``seed: +0.012``)."""
    labels = labels or {}

    def cell(stats: dict, name: str, spec: str = '.3f') -> str:
        s = stats.get(name)
        if s is None:
            return 'n/a'
        return f'{s["mean"]:{spec}} ± {s["std"]:{spec}}'

    def paired(variant: str) -> str:
        if variant == reference:
            return '(reference)'
        per_seed = differences.get(variant)
        if not per_seed:
            return 'n/a'
        return ', '.join(f'{seed}: {d:+.3f}'
                         for seed, d in sorted(per_seed.items()))

    header = (f'| variant | target mAP@0.5, mean of last {last_k} | last | '
              'best | teacher mAP@0.5 | pseudo-boxes / image | '
              'pseudo-label precision | seeds |')
    rule = '|---|---|---|---|---|---|---|---|'
    if differences is not None:
        header += f' minus {reference}, per seed |'
        rule += '---|'
    lines = [header, rule]
    for variant, stats in agg.items():
        seeds = stats['mAP50']['n'] if stats.get('mAP50') else 0
        row = ' | '.join([
            f'| {labels.get(variant, variant)}',
            cell(stats, 'mAP50_mean_last'),
            cell(stats, 'mAP50'),
            cell(stats, 'mAP50_best'),
            cell(stats, 'teacher_mAP50_mean_last'),
            cell(stats, 'num_pseudo', '.2f'),
            cell(stats, 'pseudo_precision', '.2f'), f'{seeds} |'
        ])
        if differences is not None:
            row += f' {paired(variant)} |'
        lines.append(row)
    return '\n'.join(lines)


def run_ablation(config: str,
                 burn_in_config: str,
                 variants: Dict[str, dict],
                 work_dir: str,
                 seeds: Sequence[int],
                 burn_in_iters: int,
                 adapt_iters: int,
                 evals: int,
                 burn_in_evals: int = 1,
                 last_k: int = 3,
                 keep_checkpoints: bool = False,
                 results: Optional[dict] = None,
                 on_result=None,
                 overrides: Optional[dict] = None) -> dict:
    """Run every variant from each seed's burn-in; resumable.

    First the burn-in of every seed (``work_dir/seed_<k>/burn_in``), then
    variant by variant (in the given order) every seed: ``config`` with the
    variant's overrides, continued from that seed's burn-in (see the module
    doc) in ``work_dir/seed_<k>/<variant>``. An interrupted ablation thus
    leaves its first variants finished on all seeds. A stage that finished
    in an earlier run (its ``result.json`` exists, with the same settings)
    is not trained again, so rerunning the same command resumes.

    Args:
        config (str): The recipe the variants override (an SSDA config).
        burn_in_config (str): The burn-in's (source-only) config.
        variants (dict[str, dict]): Name (a folder name) -> overrides.
        work_dir (str): Output folder.
        seeds (Sequence[int]): Training seeds.
        burn_in_iters (int): Burn-in iterations.
        adapt_iters (int): Iterations of each variant.
        evals (int): Validations per variant.
        burn_in_evals (int): Validations of the burn-in. Defaults to 1.
        last_k (int): See :func:`eval_statistics`. Defaults to 3.
        keep_checkpoints (bool): Keep the variants' last checkpoints
            (the burn-in's is always kept). Defaults to False.
        results (dict, optional): Results to add to (the same layout as
            the return value). Defaults to None.
        on_result (callable, optional): Called with the results after
            every finished run (e.g. to write a partial table).
        overrides (dict, optional): Merged into every stage's config, the
            burn-in's too, before a variant's own overrides.
            Defaults to None.

    Returns:
        dict: ``{variant: {seed (str): variant_statistics + seconds}}``.
    """
    work_dir = osp.abspath(work_dir)
    results = results if results is not None else {}
    burn_in = {
        seed: run_burn_in(
            burn_in_config,
            osp.join(work_dir, f'seed_{seed}'),
            seed,
            burn_in_iters,
            adapt_iters,
            burn_in_evals,
            reuse=True,
            overrides=overrides)
        for seed in seeds
    }
    for name, variant_overrides in variants.items():
        for seed in seeds:
            run = run_adaptation(
                config,
                name,
                osp.join(work_dir, f'seed_{seed}'),
                burn_in[seed]['checkpoint'],
                seed,
                burn_in_iters,
                adapt_iters,
                evals,
                overrides=merge_overrides(overrides, variant_overrides),
                reuse=True)
            if not keep_checkpoints and osp.isfile(run['checkpoint']):
                os.remove(run['checkpoint'])
            stats = variant_statistics(run['scalars'], last_k)
            stats['seconds'] = run['seconds']
            results.setdefault(name, {})[str(seed)] = stats
            if on_result is not None:
                on_result(results)
    return results
