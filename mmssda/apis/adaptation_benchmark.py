"""Compare source-only, SSDA-YOLO and oracle training on one task.

The protocol behind ``tools/demo.py`` and
``tools/analysis_tools/benchmark_demo.py``: a source-only burn-in, then three
runs continued from its checkpoint for the same number of iterations:
source-only (the baseline), SSDA-YOLO, and an oracle that has the target
labels (the upper bound). Every run is scored on the target validation set.
"""
import contextlib
import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional

import cv2
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
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


def prepare_data(data_root: str, seed: int) -> dict:
    """Generate the clear-to-fog benchmark into ``data_root`` once.

    An existing fog_shapes data set there is reused; any other non-empty
    folder is an error (nothing of the user's is overwritten).

    Returns:
        dict: The data set's ``meta.json``.
    """
    meta_file = osp.join(data_root, 'meta.json')
    if osp.isfile(meta_file):
        with open(meta_file) as f:
            meta = json.load(f)
        if meta.get('name') != 'fog_shapes':
            raise ValueError(f'{meta_file} is not a fog_shapes data set; '
                             'move it away or pick another --work-dir')
        print(f'Using the data set in {data_root} (seed {meta["seed"]})')
        return meta
    if osp.isdir(data_root) and os.listdir(data_root):
        raise FileExistsError(
            f'{data_root} exists and holds no fog_shapes meta.json; the demo '
            'will not write into it. Move it away and run again.')
    print(f'Writing the clear-to-fog data set to {data_root} ...')
    return generate_fog_shapes(data_root, seed=seed)


def stage_config(config: str,
                 stage: str,
                 work_dir: str,
                 iters: int,
                 seed: int,
                 evals: int,
                 load_from: Optional[str] = None,
                 warmup_iters: int = 0) -> Config:
    """The config of one stage: its recipe with the comparison's schedule.

    Args:
        config (str): Config file of the recipe.
        stage (str): Stage name; the run goes to ``work_dir/stage``.
        work_dir (str): Folder of the comparison.
        iters (int): Training iterations.
        seed (int): Training seed.
        evals (int): Validations during the run (the last at its end).
        load_from (str, optional): Checkpoint to start from.
        warmup_iters (int): Learning-rate warmup. Defaults to 0.
    """
    cfg = Config.fromfile(config)
    val_interval = max(iters // evals, 1)
    cfg.work_dir = osp.join(work_dir, stage)
    cfg.load_from = load_from
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'  # the progress bar talks; logs go to files
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = val_interval
    cfg.default_hooks.param_scheduler.warmup_iters = warmup_iters
    cfg.default_hooks.checkpoint.update(
        interval=iters, save_best=None, max_keep_ckpts=1)
    cfg.custom_hooks.append(dict(type='ProgressBarHook', desc=stage))
    # the base config names its visualizer 'visualizer'; a second run in the
    # same process would get the first run's instance and log into its dir
    cfg.visualizer.name = f'{stage}@{cfg.work_dir}@{time.time_ns()}'
    return cfg


def run_stage(cfg: Config) -> dict:
    """Train one stage; return its last checkpoint and logged scalars.

    What training prints to stdout (pycocotools' summaries) goes to
    ``<work_dir>/stdout.log``; the progress bar draws on stderr. The runner
    is built before the redirection: its logger keeps the real stdout, not
    a file that is closed when the stage ends.
    """
    os.makedirs(cfg.work_dir, exist_ok=True)
    start = time.perf_counter()
    runner = Runner.from_cfg(cfg)
    with open(osp.join(cfg.work_dir, 'stdout.log'), 'w') as out, \
            contextlib.redirect_stdout(out):
        runner.train()
    scalars_file = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(scalars_file) as f:
        scalars = [json.loads(line) for line in f if line.strip()]
    return dict(
        checkpoint=osp.join(cfg.work_dir, f'iter_{runner.max_iters}.pth'),
        scalars=scalars,
        seconds=time.perf_counter() - start)


def last_value(scalars: List[dict], key: str) -> float:
    values = [s[key] for s in scalars if key in s]
    if not values:
        raise KeyError(f'{key} was never logged')
    return float(values[-1])


def summarize(runs: Dict[str, dict]) -> dict:
    """Target mAPs per report row, and the share of the gap SSDA closes."""
    table = {
        label: dict(
            mAP50=last_value(runs[stage]['scalars'], MAP50.format(model)),
            mAP=last_value(runs[stage]['scalars'], MAP.format(model)))
        for label, stage, model in ROWS
    }
    src = table['source-only']['mAP50']
    oracle = table['oracle (labelled target)']['mAP50']
    ssda = table['SSDA student-EMA']['mAP50']
    gap_closed = (ssda - src) / (oracle - src) if oracle > src else None
    return dict(
        table=table,
        gap_closed=gap_closed,
        seconds={stage: run['seconds']
                 for stage, run in runs.items()})


def format_table(summary: dict) -> str:
    lines = [
        '| model (scored on foggy target val) | mAP@0.5 | mAP@0.5:0.95 |',
        '|---|---|---|'
    ]
    for label, row in summary['table'].items():
        lines.append(f'| {label} | {row["mAP50"]:.3f} | {row["mAP"]:.3f} |')
    if summary['gap_closed'] is not None:
        lines.append('')
        lines.append('SSDA (student-EMA) closes '
                     f'{100 * summary["gap_closed"]:.0f}% of the '
                     'source-only -> oracle mAP@0.5 gap.')
    return '\n'.join(lines)


def plot_curves(runs: Dict[str, dict], burn_in_iters: int,
                out_file: str) -> None:
    """Loss and target mAP@0.5 of every stage against iterations."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(12, 4.5))
    for stage, run in runs.items():
        offset = 0 if stage == 'burn_in' else burn_in_iters
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
    rows = np.loadtxt(label_file, ndmin=2) if osp.getsize(label_file) else \
        np.zeros((0, 5))
    cls, cx, cy, bw, bh = rows.T
    return np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h,
                     (cx + bw / 2) * w, (cy + bh / 2) * h, cls], axis=1)


def _draw(img: np.ndarray,
          boxes: np.ndarray,
          title: str,
          thin: Optional[np.ndarray] = None) -> np.ndarray:
    """Boxes (x1, y1, x2, y2, cls) coloured by class; ``thin`` marks boxes
    drawn with a 1 px line."""
    img = img.copy()
    colors = [(40, 40, 230), (40, 200, 40), (230, 120, 20)]
    thin = np.zeros(len(boxes), bool) if thin is None else thin
    for (x1, y1, x2, y2, cls), is_thin in zip(boxes, thin):
        cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)),
                      colors[int(cls) % 3], 1 if is_thin else 2)
    cv2.putText(img, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 2)
    cv2.putText(img, title, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1)
    return img


def draw_pseudo_labels(cfg: Config,
                       checkpoint: str,
                       data_root: str,
                       out_file: str,
                       num_images: int = 6,
                       candidate_thr: float = 0.2) -> None:
    """Target images: the teacher's pseudo-boxes beside the ground truth.

    The teacher sees the target-fake image, as in training, with the
    pseudo-label settings of ``semi_train_cfg``; its boxes are drawn on the
    real foggy image: thick above the pseudo-label score threshold (what the
    student trains on), thin for the candidates between ``candidate_thr``
    and that threshold (what a lower threshold would add).
    """
    model = MODELS.build(cfg.model)
    label_cfg = model.semi_train_cfg.pseudo_label_cfg
    score_thr = label_cfg.score_thr
    # Greedy NMS never lets a lower-scored box suppress a higher one, so the
    # boxes above score_thr are exactly the pseudo-labels of training.
    label_cfg.score_thr = min(candidate_thr, score_thr)
    load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
    model.eval()
    names = sorted(os.listdir(osp.join(data_root, 'target',
                                       'images')))[:num_images]
    real = [cv2.imread(osp.join(data_root, 'target', 'images', n))
            for n in names]
    fake = [cv2.imread(osp.join(data_root, 'target_fake', 'images', n))
            for n in names]
    samples = [DetDataSample(metainfo=dict(img_shape=img.shape[:2]))
               for img in fake]
    data = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(img).permute(2, 0, 1) for img in fake],
             data_samples=samples), training=False)
    pseudo, _ = model.get_pseudo_instances(data['inputs'],
                                           data['data_samples'])
    pairs = []
    for name, img, sample in zip(names, real, pseudo):
        inst = sample.gt_instances
        boxes = torch.cat([inst.bboxes, inst.labels[:, None].float()],
                          1).numpy()
        below = (inst.scores < score_thr).numpy()
        gt = _read_labels(
            osp.join(data_root, 'target', 'labels',
                     osp.splitext(name)[0] + '.txt'), img.shape[:2])
        pairs.append(np.hstack([
            _draw(img, boxes,
                  f'teacher: {(~below).sum()} (+{below.sum()} thin)', below),
            _draw(img, gt, f'ground truth: {len(gt)}'),
            np.full((img.shape[0], 8, 3), 255, np.uint8)
        ]))
    # two pairs per row
    rows = [np.hstack(pairs[i:i + 2]) for i in range(0, len(pairs) - 1, 2)]
    cv2.imwrite(out_file, np.vstack(rows))


def run_comparison(configs: Dict[str, str], work_dir: str, seed: int,
                   burn_in_iters: int, adapt_iters: int,
                   evals: int) -> Dict[str, dict]:
    """Train the four stages (see the module doc).

    Args:
        configs (dict[str, str]): Config files of the stages ``burn_in``,
            ``source_only``, ``ssda`` and ``oracle``.
        work_dir (str): Folder of the comparison; one subfolder per stage.
        seed (int): Training seed of every stage.
        burn_in_iters (int): Source-only iterations the adaptation starts
            from.
        adapt_iters (int): Iterations of source-only and SSDA after it.
        evals (int): Validations per stage.

    Returns:
        dict[str, dict]: Per stage, ``checkpoint`` (its last), ``scalars``
        (what it logged) and ``seconds``.
    """
    work_dir = osp.abspath(work_dir)
    warmup = min(100, burn_in_iters // 4)
    runs = {}
    runs['burn_in'] = run_stage(
        stage_config(configs['burn_in'], 'burn_in', work_dir, burn_in_iters,
                     seed, evals, warmup_iters=warmup))
    start = runs['burn_in']['checkpoint']
    for stage in ('source_only', 'ssda', 'oracle'):
        runs[stage] = run_stage(
            stage_config(configs[stage], stage, work_dir, adapt_iters, seed,
                         evals, load_from=start))
    return runs


def write_report(runs: Dict[str, dict],
                 ssda_config: str,
                 work_dir: str,
                 burn_in_iters: int,
                 data_root: str,
                 meta: Optional[dict] = None) -> dict:
    """Write report.md/json, curves.png and pseudo_labels.png; print it.

    Args:
        runs (dict): Output of :func:`run_comparison`.
        ssda_config (str): Config of the SSDA stage (for its teacher).
        work_dir (str): Where the report goes.
        burn_in_iters (int): Offset of the adaptation stages in the curves.
        data_root (str): The data set (target images for the pictures).
        meta (dict, optional): Settings recorded in report.json.

    Returns:
        dict: The summary (see :func:`summarize`) with ``meta``.
    """
    summary = summarize(runs)
    summary.update(meta or {})
    table = format_table(summary)
    plot_curves(runs, burn_in_iters, osp.join(work_dir, 'curves.png'))
    draw_pseudo_labels(Config.fromfile(ssda_config),
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
