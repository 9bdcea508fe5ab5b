"""The demo: SSDA-YOLO on the built-in clear -> fog benchmark, end to end.

    python tools/demo.py                    # about 12 minutes on 2 CPU cores
    python tools/demo.py --seed 1 --work-dir work_dirs/demo_seed1
    python tools/demo.py --fakes weak --work-dir work_dirs/demo_weak
    python tools/demo.py --detector yolov8 --work-dir work_dirs/demo_yolov8

It writes the data set (``data/fog_shapes``, once), then trains four normal
MMEngine runs, each in its own folder under ``--work-dir``:

1. ``burn_in``: source-only YOLOv5 from scratch (``--burn-in-iters``);
2. ``source_only``: continues 1 on the source only (``--adapt-iters``);
3. ``ssda``: continues 1 with SSDA-YOLO for as many iterations, with the
   fakes ``--fakes`` names (:data:`FAKE_SETTINGS`);
4. ``oracle``: continues 1 on labelled foggy images instead, the upper
   bound of what the adaptation iterations could reach.

Stages 2-4 *resume* the burn-in run with their own recipe: one learning-rate
schedule spans burn-in and adaptation, and optimizer state, student-EMA,
data order and random states continue from the burn-in, identically for all
three (``--restart-schedule`` instead restarts each stage with a fresh
schedule from the burn-in's weights). Starting from a source-only burn-in (the
protocol of Adaptive Teacher) gives the teacher something to distil in a
CPU-sized run and makes the comparison fair: same start, same iterations,
same images per iteration. All runs are scored on the foggy target
validation set ``--evals`` times; the table gives the last, the best and the
mean of the last ``--last-k`` evaluations, and the teacher's pseudo-labels
per image with their precision and recall. The report (``report.md``,
``report.json``, ``curves.png``, ``pseudo_labels.png``) lands in
``--work-dir``.

``--detector`` swaps the YOLOv5-n of every stage for another detector
(:data:`DETECTORS`): its config's ``model.detector`` and
``model.data_preprocessor`` replace the stages' own, with what else it
changes of the model (the consistency loss's scale); data, schedule and
recipe stay.
"""
import argparse
import os
import os.path as osp
import time
import warnings

from mmengine.config import Config

from mmssda.apis import (detector_overrides, prepare_data, run_comparison,
                         write_report)
from mmssda.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = {
    stage: osp.join(REPO, 'configs', f'{recipe}_yolov5n_fog_shapes.py')
    for stage, recipe in [('burn_in', 'source_only'),
                          ('source_only', 'source_only'), ('ssda', 'ssda'),
                          ('oracle', 'oracle')]
}
#: ``--fakes``: which fakes the SSDA stage trains with -> its config.
#: ``translated``: the data set's FDA fakes (a close match of the fog);
#: ``weak``: a global colour and contrast transfer made online
#: (``ColorStatsTransfer``); ``none``: no fakes at all (``RealAsFake``:
#: plain mean-teacher adaptation, no consistency term).
FAKE_SETTINGS = {
    'translated': CONFIGS['ssda'],
    'weak': osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes_weak_fakes.py'),
    'none': osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes_no_fakes.py'),
}
#: ``--detector``: the demo's detector -> the SSDA config whose detector
#: replaces YOLOv5-n in every stage (None: the stages' own YOLOv5-n).
DETECTORS = {
    'yolov5': None,
    'yolov8': osp.join(REPO, 'configs', 'ssda_yolov8n_fog_shapes.py'),
    'rtmdet': osp.join(REPO, 'configs', 'ssda_rtmdet_tiny_fog_shapes.py'),
}
BURN_IN_ITERS = 600
ADAPT_ITERS = 300


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='SSDA-YOLO vs source-only vs oracle on the built-in '
        'clear-to-fog benchmark')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--seed', type=int, default=0, help='training seed')
    parser.add_argument(
        '--data-seed',
        type=int,
        default=0,
        help='seed of the generated data set (written once)')
    add_protocol_args(parser)
    return parser.parse_args(argv)


def stage_configs(fakes: str = 'translated') -> dict:
    """The stages' configs with the SSDA stage of the ``--fakes``
    setting (:data:`FAKE_SETTINGS`)."""
    return dict(CONFIGS, ssda=FAKE_SETTINGS[fakes])


def stage_overrides(detector: str = 'yolov5') -> dict:
    """Overrides of every stage that put the ``--detector`` in
    (:data:`DETECTORS`); empty for the stages' own YOLOv5-n."""
    config = DETECTORS[detector]
    return {} if config is None else detector_overrides(
        config, CONFIGS['ssda'])


def add_protocol_args(parser: argparse.ArgumentParser) -> None:
    """The comparison's detector, fakes, iteration and evaluation
    settings."""
    parser.add_argument(
        '--detector',
        choices=list(DETECTORS),
        default='yolov5',
        help='the detector of every stage (yolov5: YOLOv5-n; yolov8: '
        'YOLOv8-n; rtmdet: RTMDet-tiny), from scratch at 192 px')
    parser.add_argument(
        '--fakes',
        choices=sorted(FAKE_SETTINGS),
        default='translated',
        help='the fakes of the SSDA stage: the data set\'s FDA fakes '
        '(translated), a global colour transfer made online (weak), or none '
        '(plain mean teacher)')
    parser.add_argument('--burn-in-iters', type=int, default=BURN_IN_ITERS)
    parser.add_argument('--adapt-iters', type=int, default=ADAPT_ITERS)
    parser.add_argument(
        '--evals',
        type=int,
        default=4,
        help='validations per adaptation stage (points of the mAP curves)')
    parser.add_argument(
        '--burn-in-evals', type=int, default=1,
        help='validations of the burn-in')
    parser.add_argument(
        '--last-k',
        type=int,
        default=3,
        help='evaluations averaged in the "mean of last" column')
    parser.add_argument(
        '--restart-schedule',
        action='store_true',
        help='start each adaptation stage from the burn-in weights with a '
        'fresh learning-rate schedule, restarting at the peak learning '
        'rate, instead of '
        'continuing the burn-in run')


def setup() -> str:
    """Register modules, quiet known noise, return the data root."""
    register_all_modules(init_default_scope=False)
    for message in ('pkg_resources is deprecated', "'pin_memory' argument"):
        warnings.filterwarnings('ignore', message=message)
    # the configs name data/fog_shapes relative to the repository
    os.chdir(REPO)
    return Config.fromfile(CONFIGS['ssda']).data_root


def main(argv=None):
    args = parse_args(argv)
    work_dir = osp.abspath(args.work_dir)
    data_root = setup()
    prepare_data(data_root, args.data_seed)
    configs = stage_configs(args.fakes)
    overrides = stage_overrides(args.detector)
    start = time.perf_counter()
    runs = run_comparison(
        configs,
        work_dir,
        args.seed,
        args.burn_in_iters,
        args.adapt_iters,
        args.evals,
        continue_schedule=not args.restart_schedule,
        burn_in_evals=args.burn_in_evals,
        overrides=overrides)
    summary = write_report(
        runs,
        configs['ssda'],
        work_dir,
        data_root,
        meta=dict(
            seed=args.seed,
            detector=args.detector,
            fakes=args.fakes,
            burn_in_iters=args.burn_in_iters,
            adapt_iters=args.adapt_iters,
            continue_schedule=not args.restart_schedule,
            pseudo_score_thr=Config.fromfile(configs['ssda']).model.
            semi_train_cfg.pseudo_label_cfg.score_thr),
        last_k=args.last_k,
        overrides=overrides)
    print(f'Total time: {(time.perf_counter() - start) / 60:.1f} min')
    return summary


if __name__ == '__main__':
    main()
