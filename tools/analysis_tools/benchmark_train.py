"""Time SSDA training against its compute floor, and source-only training.

For one config this runs, in one process:

1. SSDA training (the config as is, retargeted to ``--img-size`` and
   ``--source-per-batch``/``--target-per-batch``): the real MMEngine loop
   (dataloader workers, hooks, optimizer, teacher and student-EMA updates,
   logging) for ``--warmup + --iters`` iterations; the median wall time of
   the last ``--iters`` iterations, images per second (all images loaded:
   real and fake of every source and target pair) and peak RSS;
2. the FLOOR of that iteration: ``model.loss`` + ``backward`` on one batch
   already in memory (student forward, loss and backward on source_real,
   source_fake and target_real; teacher forward and pseudo-labelling on
   target_fake), with no data loading, preprocessing, hooks, logging,
   optimizer step or teacher/EMA update; and the ratio iteration/floor;
3. the target-val pass of the trained model (teacher and student) and a
   plain mmyolo ``ValLoop`` of the same detector, in images per second;
4. 1-2 again for source-only training (``distill_loss=None``,
   ``consistency_loss=None``, ``supervised_streams=['source_real']``),
   and with ``--fused`` for ``semi_train_cfg.fused_student_forward=True``.

``--count-flops`` counts the floor's floating-point operations (torch's
``FlopCounterMode``: convolutions and matrix products, forward and
backward) and reports its rate as a share of this machine's float32
matrix-product rate (a 2048x2048 ``torch.mm``, same threads): how close
the model work is to what the cores can do.

``--compile-student`` runs the student's backbone, neck and head module
under ``torch.compile`` (compiled in the first, untimed iterations).

``--image-cache ram|disk`` turns on ``LoadPairedImageFromFile``'s image
cache; ``--data-root`` may point at the Cityscapes-size fixture of
``benchmark_data.py`` (same layout as fog_shapes).

Example::

    python tools/analysis_tools/benchmark_train.py \\
        configs/ssda_yolov5n_fog_shapes.py --deepen 0.33 --widen 0.5 \\
        --img-size 256 --source-per-batch 8 --target-per-batch 8 \\
        --iters 30 --warmup 5 --num-workers 2 --out bench.json
"""
import argparse
import os
import os.path as osp
import platform
import statistics
import sys
from contextlib import redirect_stdout

import torch
from mmengine.config import DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmssda.apis import train_benchmark as bm  # noqa: E402
from mmssda.utils import register_all_modules  # noqa: E402

FLOOR_NOTE = ('floor = model.loss + backward on one preprocessed batch in '
              'memory (student forward/loss/backward on each trained stream '
              'and target_real, teacher forward + pseudo-labelling on '
              'target_fake); no data loading, preprocessing, hooks, '
              'logging, optimizer step or teacher/EMA update')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='SSDA training config')
    parser.add_argument(
        '--data-root',
        help='fog_shapes data set; generated there (at --img-size) when '
        'missing. Defaults to <work-dir>/fog_shapes_<img-size>')
    parser.add_argument('--img-size', type=int, default=256)
    parser.add_argument('--source-per-batch', type=int, default=8)
    parser.add_argument('--target-per-batch', type=int, default=8)
    parser.add_argument('--iters', type=int, default=30,
                        help='timed iterations per variant')
    parser.add_argument('--warmup', type=int, default=5,
                        help='untimed iterations first')
    parser.add_argument('--floor-iters', type=int, default=None,
                        help='timed floor repetitions (default: '
                        'max(3, iters // 4))')
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads in the main process '
                        '(default: torch\'s choice)')
    parser.add_argument('--deepen', type=float, default=None,
                        help='YOLO deepen_factor (YOLOv5-s: 0.33)')
    parser.add_argument('--widen', type=float, default=None,
                        help='YOLO widen_factor (YOLOv5-s: 0.5)')
    parser.add_argument('--fused', action='store_true',
                        help='also time semi_train_cfg.fused_student_'
                        'forward=True (joint BatchNorm statistics)')
    parser.add_argument('--compile-student', action='store_true',
                        help="run the student's backbone, neck and head "
                        'module under torch.compile (Module.compile, '
                        'inductor) in every variant')
    parser.add_argument('--compare-memory-format', action='store_true',
                        help='also time the SSDA floor in the other memory '
                        'format (channels_last <-> contiguous, see '
                        'model.channels_last)')
    parser.add_argument('--count-flops', action='store_true',
                        help="count the floor's floating-point operations "
                        '(torch FlopCounterMode: convolutions and matrix '
                        "products) and read its rate against this "
                        "machine's float32 matrix-product rate")
    parser.add_argument('--image-cache', choices=['ram', 'disk'],
                        help='cache of LoadPairedImageFromFile (images '
                        'decoded once, kept at --img-size)')
    parser.add_argument('--no-source-only', action='store_true')
    parser.add_argument('--no-val', action='store_true')
    parser.add_argument('--val-repeats', type=int, default=2)
    parser.add_argument('--num-source', type=int, default=64,
                        help='images per split when generating data')
    parser.add_argument('--num-val', type=int, default=32)
    parser.add_argument('--work-dir', default='work_dirs/benchmark_train')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='config overrides, merged last')
    return parser.parse_args(argv)


def prepare_data(args) -> str:
    """The data root, generated with generate_fog_shapes when missing."""
    data_root = args.data_root or osp.join(args.work_dir,
                                           f'fog_shapes_{args.img_size}')
    if not osp.isfile(osp.join(data_root, 'meta.json')):
        from mmssda.datasets import generate_fog_shapes
        print(f'Generating fog_shapes ({args.img_size} px) in {data_root}',
              flush=True)
        generate_fog_shapes(
            data_root,
            seed=0,
            num_source=args.num_source,
            num_target=args.num_source,
            num_val=args.num_val,
            img_size=args.img_size)
    return data_root


def run_variant(name: str,
                cfg,
                args,
                val: bool = False,
                compare_memory_format: bool = False,
                compile_student: bool = False) -> dict:
    """Time one training variant, its floor and (optionally) validation.
    """
    print(f'[{name}] {args.warmup} + {args.iters} iterations ...',
          flush=True)
    runner = Runner.from_cfg(cfg)
    if compile_student:
        bm.compile_student(runner.model.module if hasattr(
            runner.model, 'module') else runner.model)
    bm.reset_peak_rss()
    # pycocotools' summaries of the end-of-training validation
    with open(os.devnull, 'w') as null, redirect_stdout(null):
        iter_times = bm.time_train_loop(runner, args.warmup)
    rss = bm.peak_rss_mb(runner)
    bm.shutdown_train_workers(runner)
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    batch = bm.first_batch(runner)
    floor_iters = args.floor_iters or max(3, args.iters // 4)
    print(f'[{name}] floor: {floor_iters} repetitions ...', flush=True)
    floor_times = bm.time_floor(model, batch, floor_iters)
    data_times = bm.time_data_pipeline(runner, batches=2)
    flops = bm.floor_flops(model, batch) if args.count_flops else None
    pairs = args.source_per_batch + args.target_per_batch
    it = statistics.median(iter_times['wall'])
    floor = statistics.median(floor_times['wall'])
    result = dict(
        iter_s=bm.summarize(iter_times['wall']),
        iter_times=iter_times['wall'],
        iter_cpu_s=bm.summarize(iter_times['cpu']),
        images_per_iter=2 * pairs,
        images_per_s=2 * pairs / it,
        floor_s=bm.summarize(floor_times['wall']),
        floor_times=floor_times['wall'],
        floor_cpu_s=bm.summarize(floor_times['cpu']),
        ratio_iter_over_floor=it / floor,
        ratio_cpu_iter_over_floor=statistics.median(iter_times['cpu']) /
        statistics.median(floor_times['cpu']),
        data_pipeline_s_per_batch_one_process=statistics.median(data_times),
        peak_rss_mb=rss)
    if flops is not None:
        result['floor_gflop'] = flops / 1e9
        result['floor_gflop_per_s'] = flops / 1e9 / floor
    if compare_memory_format:
        is_cl = getattr(model, 'memory_format', None) is torch.channels_last
        other = 'contiguous' if is_cl else 'channels_last'
        print(f'[{name}] floor in {other} ...', flush=True)
        bm.to_channels_last(model, not is_cl)
        other_times = bm.time_floor(model, batch, floor_iters)
        bm.to_channels_last(model, is_cl)
        result['memory_format'] = 'channels_last' if is_cl else 'contiguous'
        result['floor_other_memory_format'] = dict(
            memory_format=other,
            floor_s=bm.summarize(other_times['wall']),
            floor_cpu_s=bm.summarize(other_times['cpu']))
    if val:
        print(f'[{name}] validation ...', flush=True)
        # built outside redirect_stdout: its logger keeps the stream
        plain = Runner.from_cfg(bm.plain_detector_val_config(cfg))
        # pycocotools prints its summaries on stdout
        with open(os.devnull, 'w') as null, redirect_stdout(null):
            result['val'] = bm.time_val_loop(runner, args.val_repeats)
            # the same two models (teacher, student-EMA), one by one
            result['plain_mmyolo_val'] = bm.time_plain_val(
                plain, bm.val_model_states(runner), args.val_repeats)
        del plain
    del runner, model, batch
    bm.release_memory()
    return result


def print_report(results: dict, meta: dict) -> None:
    print()
    print(f"config {meta['config']} | {meta['img_size']} px | "
          f"{meta['source_per_batch']}+{meta['target_per_batch']} pairs | "
          f"{meta['num_workers']} workers | torch threads "
          f"{meta['torch_threads']} | {meta['cpus']} CPUs | "
          f"timed {meta['iters']} after {meta['warmup']} warm-up")
    header = (f"{'variant':<14}{'s/iter':>9}{'img/s':>8}{'floor s':>9}"
              f"{'iter/floor':>11}{'cpu ratio':>10}{'data s/b':>10}"
              f"{'RSS main':>10}{'RSS wrk':>9}")
    print(header)
    print('-' * len(header))
    for name, r in results.items():
        print(f"{name:<14}{r['iter_s']['median']:>9.3f}"
              f"{r['images_per_s']:>8.1f}{r['floor_s']['median']:>9.3f}"
              f"{r['ratio_iter_over_floor']:>11.3f}"
              f"{r['ratio_cpu_iter_over_floor']:>10.3f}"
              f"{r['data_pipeline_s_per_batch_one_process']:>10.3f}"
              f"{r['peak_rss_mb']['main']:>9.0f}M"
              f"{r['peak_rss_mb']['workers']:>8.0f}M")
    print(f'(medians; {FLOOR_NOTE}; img/s counts every image loaded: real '
          'and fake of each source and target pair; data s/b: one batch '
          'loaded and augmented in one process, which the workers overlap '
          'with the model; cpu ratio: the same ratio in CPU seconds of the '
          'main process (workers excluded), less sensitive to other load; '
          'RSS: peak main process / sum of worker peaks, '
          'which double-counts pages shared after fork)')
    for name, r in results.items():
        if 'floor_other_memory_format' in r:
            o = r['floor_other_memory_format']
            print(f"[{name}] floor {r['floor_s']['median']:.3f} s "
                  f"({r['memory_format']}), "
                  f"{o['floor_s']['median']:.3f} s ({o['memory_format']}); "
                  f"CPU s {r['floor_cpu_s']['median']:.3f} vs "
                  f"{o['floor_cpu_s']['median']:.3f}")
    for name, r in results.items():
        if 'floor_gflop' in r:
            rate = r['floor_gflop_per_s']
            peak = meta['matmul_gflop_per_s']
            print(f"[{name}] floor {r['floor_gflop']:.1f} GFLOP "
                  '(convolutions and matrix products, forward and backward) '
                  f"in {r['floor_s']['median']:.3f} s: {rate:.1f} GFLOP/s, "
                  f'{rate / peak:.0%} of the {peak:.1f} GFLOP/s of a float32 '
                  f"2048x2048 matrix product here ({meta['torch_threads']} "
                  'threads)')
    for name, r in results.items():
        if 'val' in r:
            v, p = r['val'], r['plain_mmyolo_val']
            print(f"[{name}] target-val teacher+student: "
                  f"{v['images_per_s_per_model']:.1f} img/s per model "
                  f"({v['images']} images x {v['passes']} models in "
                  f"{v['seconds']:.2f} s); plain mmyolo ValLoop of the "
                  f"same detector with the same weights: "
                  f"{p['images_per_s_per_model']:.1f} img/s "
                  f"(ratio {v['images_per_s_per_model'] / p['images_per_s_per_model']:.2f})")  # noqa: E501


def main(argv=None) -> dict:
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return run(args)
    finally:
        torch.set_num_threads(threads)


def run(args) -> dict:
    """Run the variants, print the report, write ``--out``."""
    data_root = prepare_data(args)
    max_iters = args.warmup + args.iters
    base = bm.benchmark_config(
        args.config,
        work_dir=osp.join(args.work_dir, 'runs'),
        data_root=data_root,
        img_size=args.img_size,
        source_per_batch=args.source_per_batch,
        target_per_batch=args.target_per_batch,
        num_workers=args.num_workers,
        max_iters=max_iters,
        deepen_factor=args.deepen,
        widen_factor=args.widen,
        cfg_options=args.cfg_options)
    if args.image_cache:
        bm.set_image_cache(base, args.image_cache,
                           osp.join(args.work_dir, 'image_cache')
                           if args.image_cache == 'disk' else None)
    variants = [('ssda', base, not args.no_val)]
    if args.fused:
        fused = bm.fused_config(base)
        variants.append(('ssda_fused', fused, False))
    if not args.no_source_only:
        variants.append(('source_only', bm.source_only_config(base), False))
    results = {}
    for name, cfg, val in variants:
        results[name] = run_variant(
            name,
            cfg,
            args,
            val=val,
            compare_memory_format=args.compare_memory_format
            and name == 'ssda',
            compile_student=args.compile_student)
    if args.count_flops:
        print('float32 matrix-product rate ...', flush=True)
        matmul = bm.matmul_gflops()
    meta = dict(
        config=args.config,
        data_root=data_root,
        img_size=args.img_size,
        source_per_batch=args.source_per_batch,
        target_per_batch=args.target_per_batch,
        iters=args.iters,
        warmup=args.warmup,
        num_workers=args.num_workers,
        image_cache=args.image_cache,
        compile_student=args.compile_student,
        deepen=args.deepen,
        widen=args.widen,
        torch_threads=torch.get_num_threads(),
        cpus=bm.cpu_count(),
        torch=torch.__version__,
        machine=platform.processor() or platform.machine(),
        floor_includes=FLOOR_NOTE)
    if args.count_flops:
        meta['matmul_gflop_per_s'] = matmul
    print_report(results, meta)
    out = dict(meta=meta, results=results)
    if args.out:
        bm.write_json(args.out, out)
    return out


if __name__ == '__main__':
    main()
