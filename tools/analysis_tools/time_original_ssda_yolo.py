"""Time the original SSDA-YOLO code (github hnuzhy/SSDA-YOLO) from outside.

Runs with the ORIGINAL's Python (its own virtual environment), imports the
original from its checkout (``--repo``) and changes nothing in it; nothing
of mmssda is imported. ``benchmark_data.py`` and ``benchmark_vs_original.py``
call it in a subprocess and read the JSON it writes.

``loader``: its training data set (``utils.datasets.LoadImagesAndLabels``,
``augment=True``, ``hyp.scratch``) for the source and the target pairs, and
the seconds to load one batch of ``--batch-size`` source + as many target
pairs in this one process (``__getitem__`` of each sample: mosaic of 4
real and 4 fake images, random perspective, HSV, flip; then its
``collate_fn``), with or without its ``--cache-images``.

``train``: runs ``ssda_yolov5_train.py`` with the given arguments and
records the wall and CPU time of every training iteration (from one
iteration's start to the next: batch fetch, forward, backward, optimizer,
EMA, logging), stopping the process after ``--warmup + --iters``
iterations; also the main process's peak RSS over the timed iterations.

Examples::

    ORIG=path/to/its-venv/bin/python
    $ORIG tools/analysis_tools/time_original_ssda_yolo.py \\
        --repo path/to/SSDA-YOLO --out o.json loader \\
        --data-root work_dirs/benchmark_data/fixture --img-size 640 --cache
    $ORIG tools/analysis_tools/time_original_ssda_yolo.py \\
        --repo path/to/SSDA-YOLO --out o.json train --iters 30 -- \\
        --weights '' --cfg models/yolov5s.yaml --data d.yaml ...
"""
import argparse
import json
import os
import os.path as osp
import random
import statistics
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--repo', required=True,
                        help='checkout of the original SSDA-YOLO')
    parser.add_argument('--out', required=True, help='JSON results')
    sub = parser.add_subparsers(dest='command', required=True)
    loader = sub.add_parser('loader')
    loader.add_argument('--data-root', required=True,
                        help='{source,source_fake,target,target_fake}/'
                        'images (labels beside the real ones)')
    loader.add_argument('--img-size', type=int, default=640)
    loader.add_argument('--batch-size', type=int, default=8,
                        help='pairs per domain and batch')
    loader.add_argument('--batches', type=int, default=3)
    loader.add_argument('--warmup', type=int, default=1)
    loader.add_argument('--cache', action='store_true',
                        help='its --cache-images')
    train = sub.add_parser('train')
    train.add_argument('--iters', type=int, default=30)
    train.add_argument('--warmup', type=int, default=5)
    train.add_argument('args', nargs=argparse.REMAINDER,
                       help='ssda_yolov5_train.py arguments (after --)')
    return parser.parse_args(argv)


def vm_hwm_mb():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return None


def reset_peak_rss():
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def write(path, result):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(result, f, indent=2)


def time_loader(args):
    import cv2
    import torch
    import yaml
    cv2.setNumThreads(0)
    torch.set_num_threads(1)  # as in a dataloader worker
    from utils.datasets import LoadImagesAndLabels
    with open('data/hyps/hyp.scratch.yaml') as f:
        hyp = yaml.safe_load(f)
    root = osp.abspath(args.data_root)

    def build(real, fake):
        return LoadImagesAndLabels([osp.join(root, real, 'images')],
                                   [osp.join(root, fake, 'images')],
                                   args.img_size,
                                   args.batch_size,
                                   augment=True,
                                   hyp=hyp,
                                   cache_images=args.cache,
                                   stride=32)

    start = time.perf_counter()
    source = build('source', 'source_fake')
    target = build('target', 'target_fake')
    build_s = time.perf_counter() - start
    rng = random.Random(0)
    wall, cpu = [], []
    for i in range(args.warmup + args.batches):
        t, c = time.perf_counter(), time.process_time()
        for dataset in (source, target):
            indices = [
                rng.randrange(len(dataset)) for _ in range(args.batch_size)
            ]
            LoadImagesAndLabels.collate_fn([dataset[j] for j in indices])
        if i >= args.warmup:
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return dict(
        cache=args.cache,
        build_s=build_s,
        s_per_batch=statistics.median(wall),
        cpu_s_per_batch=statistics.median(cpu),
        times=wall,
        cpu_times=cpu,
        pairs_per_batch=2 * args.batch_size,
        num_pairs=dict(source=len(source), target=len(target)))


def time_train(args):
    """Run the training script; stop it after warmup + iters iterations."""
    import tqdm as tqdm_module
    needed = args.warmup + args.iters
    out = args.out
    stamps = []

    class TimedTqdm(tqdm_module.tqdm):
        """The training loop's progress bar (it wraps an ``enumerate``)
        stamps the start of every iteration."""

        def __init__(self, iterable=None, *a, **kw):
            self._train_loop = isinstance(iterable, enumerate)
            super().__init__(iterable, *a, **kw)

        def __iter__(self):
            for item in super().__iter__():
                if self._train_loop:
                    self._stamp()
                yield item
            if self._train_loop:
                self._stamp(final=True)

        def _stamp(self, final=False):
            stamps.append((time.perf_counter(), time.process_time()))
            if len(stamps) == args.warmup + 1:
                reset_peak_rss()
            if len(stamps) == needed + 1 or final:
                finish(final)

    def finish(final):
        wall = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
        cpu = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]
        if len(wall) < needed:
            raise RuntimeError(
                f'only {len(wall)} iterations in the epoch; the data set '
                f'needs at least {needed} batches')
        wall, cpu = wall[args.warmup:], cpu[args.warmup:]
        write(
            out,
            dict(
                s_per_iter=statistics.median(wall),
                cpu_s_per_iter=statistics.median(cpu),
                iter_times=wall,
                cpu_times=cpu,
                peak_rss_main_mb=vm_hwm_mb(),
                epoch_ended=final,
                argv=args.args))
        sys.stdout.flush()
        os._exit(0)

    tqdm_module.tqdm = TimedTqdm
    train_args = [a for a in args.args if a != '--']
    sys.argv = ['ssda_yolov5_train.py'] + train_args
    import runpy
    runpy.run_path('ssda_yolov5_train.py', run_name='__main__')
    raise RuntimeError('the training script ended before the timed '
                       'iterations were done')


def main(argv=None):
    args = parse_args(argv)
    repo = osp.abspath(args.repo)
    args.out = osp.abspath(args.out)
    if args.command == 'loader':
        args.data_root = osp.abspath(args.data_root)
    os.chdir(repo)
    sys.path.insert(0, repo)
    if args.command == 'loader':
        write(args.out, time_loader(args))
    else:
        time_train(args)


if __name__ == '__main__':
    main()
