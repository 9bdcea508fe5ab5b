"""Data-pipeline throughput at Cityscapes resolution, with and without the
image cache, next to the original SSDA-YOLO loader.

On a generated fixture in the original's layout (``--size`` 2048x1024 PNG,
``--num-pairs`` source and target pairs, YOLO txt labels), for each loader:

- ``s/batch``: wall seconds to load one training batch of
  ``--source-per-batch`` + ``--target-per-batch`` pairs in ONE process with
  one thread (decode, mosaic of 4 real + 4 fake images per sample, affine,
  HSV, flip, packing and collation), median of ``--batches`` after one
  untimed batch; ``CPU s/batch`` the same in CPU seconds of the process
  (what a dataloader worker spends, robust to other load);
- ``workers for T s``: dataloader workers (one core each) needed so that
  the data keeps up with a model step of T seconds:
  ``ceil(CPU s/batch / T)``;
- ``fill s``: with a cache, the untimed pass that stores every image
  (mmssda: one pass over both data sets; the original: building its data
  sets, which decodes its cache in threads).

Loaders: mmssda (the config's ``PairedDataset`` pipeline, retargeted to
``--img-size``) with ``cache=None`` and with each ``--cache`` mode; with
``--original``, the original's ``LoadImagesAndLabels`` without and with its
``--cache-images``, run by ``time_original_ssda_yolo.py`` in the original's
own Python (``--original-python``). ``--rounds`` repeats all loaders,
interleaved. Every loader runs in a fresh process of its own (mmssda's
too, unless ``--in-process``), as a dataloader worker does; mmssda's with
the malloc settings of ``SSDAIterBasedTrainLoop``'s workers
(:func:`mmssda.utils.keep_large_buffers`).

Example::

    python tools/analysis_tools/benchmark_data.py \\
        --original path/to/SSDA-YOLO \\
        --original-python path/to/its-venv/bin/python \\
        --out work_dirs/benchmark_data.json
"""
import argparse
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

import cv2
import numpy as np
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmssda.apis import train_benchmark as bm  # noqa: E402
from mmssda.utils import keep_large_buffers  # noqa: E402
from mmssda.utils import register_all_modules  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ORIGINAL_TOOL = osp.join(REPO, 'tools', 'analysis_tools',
                         'time_original_ssda_yolo.py')
SPLITS = (('source', 'source_fake'), ('target', 'target_fake'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config',
                        default=osp.join(REPO, 'configs',
                                         'ssda_yolov5n_fog_shapes.py'),
                        help='an SSDA config whose data config reads the '
                        'fog_shapes layout (YOLO txt)')
    parser.add_argument('--size', type=int, nargs=2, default=(2048, 1024),
                        metavar=('W', 'H'), help='fixture image size')
    parser.add_argument('--num-pairs', type=int, default=8,
                        help='source and target pairs in the fixture')
    parser.add_argument('--img-size', type=int, default=640)
    parser.add_argument('--source-per-batch', type=int, default=8)
    parser.add_argument('--target-per-batch', type=int, default=8)
    parser.add_argument('--batches', type=int, default=3)
    parser.add_argument('--cache', nargs='*', default=['ram'],
                        choices=['ram', 'disk'],
                        help='cache modes timed besides cache=None')
    parser.add_argument('--step-times', type=float, nargs='+',
                        default=(0.1, 0.25, 0.5, 1.0),
                        help='model step times (s) to size workers for')
    parser.add_argument('--rounds', type=int, default=1)
    parser.add_argument('--original', help='checkout of the original')
    parser.add_argument('--original-python', default=sys.executable,
                        help="the original's Python (its own venv)")
    parser.add_argument('--work-dir', default='work_dirs/benchmark_data')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--in-process', action='store_true',
                        help="time mmssda's loaders in this process, one "
                        'after the other (default: each in a fresh '
                        "process, as the original's)")
    parser.add_argument('--only-cache', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_fixture(root: str, num_pairs: int, size, seed: int = 0) -> str:
    """Cityscapes-size PNG pairs with YOLO txt labels (idempotent).

    Layout (the original's and ``configs/_base_/datasets/fog_shapes.py``'s):
    ``{source,target}/{images,labels}``, ``{source,target}_fake/images``.
    Images are smooth colour fields with texture and a little sensor noise
    (about 3 MB per PNG, like Cityscapes' leftImg8bit), with 3-8 boxes;
    fakes are the same scene in a fog-like blend.
    """
    meta_file = osp.join(root, 'meta.json')
    meta = dict(num_pairs=num_pairs, size=list(size), seed=seed)
    if osp.isfile(meta_file):
        with open(meta_file) as f:
            if json.load(f) == meta:
                return root
    rng = np.random.default_rng(seed)
    w, h = size
    for real, fake in SPLITS:
        for d in (osp.join(real, 'images'), osp.join(real, 'labels'),
                  osp.join(fake, 'images')):
            os.makedirs(osp.join(root, d), exist_ok=True)
        for i in range(num_pairs):
            low = cv2.resize(
                rng.integers(0, 255, (16, 32, 3)).astype(np.uint8), (w, h),
                interpolation=cv2.INTER_CUBIC)
            mid = cv2.resize(
                rng.integers(0, 60, (128, 256, 3)).astype(np.uint8), (w, h),
                interpolation=cv2.INTER_LINEAR)
            img = low.astype(np.float32) * 0.7 + mid
            lines = []
            for _ in range(int(rng.integers(3, 9))):
                bw, bh = (int(rng.integers(w // 40, w // 6)),
                          int(rng.integers(h // 30, h // 4)))
                x, y = int(rng.integers(0, w - bw)), int(
                    rng.integers(0, h - bh))
                img[y:y + bh, x:x + bw] = rng.integers(0, 255, 3)
                cls = int(rng.integers(0, 3))
                lines.append(f'{cls} {(x + bw / 2) / w:.6f} '
                             f'{(y + bh / 2) / h:.6f} {bw / w:.6f} '
                             f'{bh / h:.6f}')
            noise = rng.normal(0, 1.2, img.shape)
            real_img = np.clip(img + noise, 0, 255).astype(np.uint8)
            fake_img = np.clip(0.6 * img + 0.4 * 200 + noise, 0,
                               255).astype(np.uint8)
            stem = f'{i:05d}'
            cv2.imwrite(osp.join(root, real, 'images', stem + '.png'),
                        real_img)
            cv2.imwrite(osp.join(root, fake, 'images', stem + '.png'),
                        fake_img)
            with open(osp.join(root, real, 'labels', stem + '.txt'),
                      'w') as f:
                f.write('\n'.join(lines) + '\n')
    with open(meta_file, 'w') as f:
        json.dump(meta, f)
    return root


def time_ours(args, fixture: str, cache) -> dict:
    """One-process batch time of mmssda's training data pipeline."""
    cfg = bm.benchmark_config(
        args.config,
        work_dir=osp.join(args.work_dir, 'runs'),
        data_root=fixture,
        img_size=args.img_size,
        source_per_batch=args.source_per_batch,
        target_per_batch=args.target_per_batch,
        num_workers=0,
        max_iters=1)
    bm.set_image_cache(
        cfg, cache,
        osp.join(args.work_dir, 'image_cache') if cache == 'disk' else None)
    with DefaultScope.overwrite_default_scope('mmssda'):
        loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
        fill_s = None
        if cache:
            start = time.perf_counter()
            for dataset in loader.dataset.datasets:
                for i in range(len(dataset)):
                    dataset[i]
            fill_s = time.perf_counter() - start
        indices = iter(loader.sampler)
        wall, cpu = [], []
        for i in range(1 + args.batches):
            t, c = time.perf_counter(), time.process_time()
            bm.load_batch(loader, indices)
            if i >= 1:
                wall.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
    return dict(
        cache=cache,
        fill_s=fill_s,
        s_per_batch=statistics.median(wall),
        cpu_s_per_batch=statistics.median(cpu),
        times=wall,
        cpu_times=cpu)


def time_ours_fresh(args, fixture: str, cache) -> dict:
    """:func:`time_ours` in a fresh Python process.

    A loader timed after another in one process inherits its heap: after
    the uncached loader has decoded full-size images, the cached one
    page-faulted on its new mosaic canvases and took about a quarter longer
    (0.250 against 0.202 s per batch, two runs of this tool) than in a
    process of its own, which is what a dataloader worker is (and how the
    original's loaders are timed).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'ours.json')
        cmd = [
            sys.executable,
            osp.abspath(__file__), '--config', args.config, '--size',
            *map(str, args.size), '--num-pairs',
            str(args.num_pairs), '--img-size',
            str(args.img_size), '--source-per-batch',
            str(args.source_per_batch), '--target-per-batch',
            str(args.target_per_batch), '--batches',
            str(args.batches), '--work-dir', args.work_dir, '--only-cache',
            cache or 'none', '--out', out
        ]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f'mmssda loader failed ({cmd}):\n'
                               f'{proc.stdout[-3000:]}{proc.stderr[-3000:]}')
        with open(out) as f:
            return json.load(f)


def time_original(args, fixture: str, cache: bool) -> dict:
    """The original's loader, in its own Python (a subprocess)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'original.json')
        cmd = [
            args.original_python, ORIGINAL_TOOL, '--repo', args.original,
            '--out', out, 'loader', '--data-root', fixture, '--img-size',
            str(args.img_size), '--batch-size',
            str(args.source_per_batch), '--batches',
            str(args.batches)
        ] + (['--cache'] if cache else [])
        env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
        env['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f'the original loader failed ({cmd}):\n'
                               f'{proc.stdout[-3000:]}{proc.stderr[-3000:]}')
        with open(out) as f:
            result = json.load(f)
    result['fill_s'] = result.pop('build_s') if cache else None
    return result


def workers_needed(cpu_s: float, step_times) -> dict:
    """Workers (one core each) that keep up with each model step time."""
    return {str(t): max(1, math.ceil(cpu_s / t)) for t in step_times}


def vs_original(runs: dict) -> dict:
    """Each of our loaders against the original's, round by round.

    Ours without cache is read against the original without cache, ours
    with a cache against the original's ``--cache-images``; the ratio is
    of the CPU seconds per batch of the same round (the machine's speed
    drifts between rounds).

    Args:
        runs (dict): Loader name -> its rounds (``cpu_s_per_batch`` each).

    Returns:
        dict: Our loader's name -> ``against`` (the original's loader),
        ``per_round`` (ratios) and ``median``; empty without the original.
    """
    out = {}
    for name, rounds in runs.items():
        if not name.startswith('mmssda'):
            continue
        other = 'original' if name == 'mmssda' else 'original --cache-images'
        if other not in runs:
            continue
        ratios = [
            ours['cpu_s_per_batch'] / theirs['cpu_s_per_batch']
            for ours, theirs in zip(rounds, runs[other])
        ]
        out[name] = dict(
            against=other,
            per_round=ratios,
            median=statistics.median(ratios))
    return out


def print_report(results: dict, meta: dict) -> None:
    print()
    print(f"fixture {meta['size'][0]}x{meta['size'][1]} PNG, "
          f"{meta['num_pairs']}+{meta['num_pairs']} pairs | "
          f"{meta['img_size']} px | batch "
          f"{meta['source_per_batch']}+{meta['target_per_batch']} pairs | "
          f"one process, one thread | {meta['rounds']} round(s)")
    steps = meta['step_times']
    header = (f"{'loader':<26}{'s/batch':>9}{'CPU s/b':>9}"
              f"{'vs none':>9}{'fill s':>8}  workers for step " +
              ' / '.join(f'{t:g}' for t in steps) + ' s')
    print(header)
    print('-' * len(header))
    for name, r in results.items():
        fill = f"{r['fill_s']:>8.1f}" if r['fill_s'] is not None \
            else f"{'-':>8}"
        print(f"{name:<26}{r['s_per_batch']:>9.3f}"
              f"{r['cpu_s_per_batch']:>9.3f}{r['vs_uncached']:>9.3f}{fill}"
              '  ' + ' / '.join(str(r['workers'][str(t)]) for t in steps))
    print('(medians over rounds of the per-round medians; vs none: CPU '
          's/batch over the same loader without cache; workers: '
          'ceil(CPU s/batch / step))')
    for name, r in results.items():
        if 'vs_original' in r:
            v = r['vs_original']
            print(f"{name} / {v['against']}, CPU s/batch of the same "
                  'round: ' + ', '.join(f'{x:.3f}' for x in v['per_round']) +
                  f" (median {v['median']:.3f})")


@contextmanager
def worker_threads() -> Iterator[None]:
    """One torch thread and no OpenCV threads in this process, as in a
    dataloader worker; the previous settings afterwards."""
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)


def main(argv=None) -> dict:
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    fixture = write_fixture(
        osp.abspath(
            osp.join(args.work_dir,
                     f'fixture_{args.size[0]}x{args.size[1]}')),
        args.num_pairs, tuple(args.size))
    if args.only_cache:  # one loader, for time_ours_fresh
        # as SSDAIterBasedTrainLoop's dataloader workers
        keep_large_buffers()
        with worker_threads():
            result = time_ours(
                args, fixture,
                None if args.only_cache == 'none' else args.only_cache)
        bm.write_json(args.out, result)
        return result
    time_mmssda = time_ours if args.in_process else time_ours_fresh
    loaders = [('mmssda', 'ours', None)]
    loaders += [(f'mmssda cache={m}', 'ours', m) for m in args.cache]
    if args.original:
        loaders += [('original', 'original', False),
                    ('original --cache-images', 'original', True)]
    runs = {name: [] for name, _, _ in loaders}
    with worker_threads():
        for r in range(args.rounds):
            for name, kind, cache in loaders:
                print(f'[round {r + 1}] {name} ...', flush=True)
                runs[name].append(
                    time_mmssda(args, fixture, cache) if kind ==
                    'ours' else time_original(args, fixture, cache))
    results = {}
    for name, rs in runs.items():
        results[name] = dict(
            s_per_batch=statistics.median(x['s_per_batch'] for x in rs),
            cpu_s_per_batch=statistics.median(x['cpu_s_per_batch']
                                              for x in rs),
            fill_s=(statistics.median(x['fill_s'] for x in rs)
                    if rs[0]['fill_s'] is not None else None),
            rounds=rs)
    for name, r in results.items():
        base = 'original' if name.startswith('original') else 'mmssda'
        r['vs_uncached'] = r['cpu_s_per_batch'] / \
            results[base]['cpu_s_per_batch']
        r['workers'] = workers_needed(r['cpu_s_per_batch'], args.step_times)
    for name, comparison in vs_original(runs).items():
        results[name]['vs_original'] = comparison
    meta = dict(
        fixture=fixture,
        size=list(args.size),
        num_pairs=args.num_pairs,
        img_size=args.img_size,
        source_per_batch=args.source_per_batch,
        target_per_batch=args.target_per_batch,
        batches=args.batches,
        rounds=args.rounds,
        mmssda_in_process=args.in_process,
        step_times=list(args.step_times),
        config=args.config,
        original=args.original,
        cpus=bm.cpu_count())
    print_report(results, meta)
    out = dict(meta=meta, results=results)
    if args.out:
        bm.write_json(args.out, out)
    return out


if __name__ == '__main__':
    main()
