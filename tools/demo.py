"""The demo: SSDA-YOLO on the built-in clear -> fog benchmark, end to end.

    python tools/demo.py                    # about 15 minutes on 2 CPU cores
    python tools/demo.py --seed 1 --work-dir work_dirs/demo_seed1

It writes the data set (``data/fog_shapes``, once), then trains four normal
MMEngine runs, each in its own folder under ``--work-dir``:

1. ``burn_in``: source-only YOLOv5 from scratch (``--burn-in-iters``);
2. ``source_only``: continues 1 on the source only (``--adapt-iters``);
3. ``ssda``: continues 1 with SSDA-YOLO for as many iterations;
4. ``oracle``: continues 1 on labelled foggy images instead, the upper
   bound of what the adaptation iterations could reach.

Starting 2, 3 and 4 from the same burn-in checkpoint (the protocol of
Adaptive Teacher) gives the teacher something to distil from in a CPU-sized
run and makes the comparison fair: same start, same iterations, same images
per iteration for the baseline and the oracle. All runs are scored on the
foggy target validation set. The report (``report.md``,
``report.json``, ``curves.png``, ``pseudo_labels.png``) lands in
``--work-dir``.
"""
import argparse
import os
import os.path as osp
import time
import warnings

from mmengine.config import Config

from mmssda.apis import prepare_data, run_comparison, write_report
from mmssda.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = dict(
    burn_in='configs/source_only_yolov5n_fog_shapes.py',
    source_only='configs/source_only_yolov5n_fog_shapes.py',
    ssda='configs/ssda_yolov5n_fog_shapes.py',
    oracle='configs/oracle_yolov5n_fog_shapes.py')


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
    parser.add_argument('--burn-in-iters', type=int, default=600)
    parser.add_argument('--adapt-iters', type=int, default=300)
    parser.add_argument(
        '--evals',
        type=int,
        default=3,
        help='validations per run (points of the mAP curves)')
    return parser.parse_args(argv)


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
    start = time.perf_counter()
    runs = run_comparison(CONFIGS, work_dir, args.seed, args.burn_in_iters,
                          args.adapt_iters, args.evals)
    summary = write_report(
        runs,
        CONFIGS['ssda'],
        work_dir,
        args.burn_in_iters,
        data_root,
        meta=dict(
            seed=args.seed,
            burn_in_iters=args.burn_in_iters,
            adapt_iters=args.adapt_iters))
    print(f'Total time: {(time.perf_counter() - start) / 60:.1f} min')
    return summary


if __name__ == '__main__':
    main()
