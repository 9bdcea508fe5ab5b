"""Seconds per SSDA iteration: mmssda next to the original SSDA-YOLO code,
interleaved in one run on the same data.

Each round runs, one after the other, each in a fresh process:

- mmssda: ``benchmark_train.py`` on ``--config`` (the SSDA variant only,
  no validation), ``--warmup`` + ``--iters`` iterations; its median
  seconds per iteration, its floor (``model.loss`` + ``backward`` on a
  batch in memory) and the main process's peak RSS;
- the original: ``ssda_yolov5_train.py --weights '' --cfg
  models/yolov5s.yaml --img-size S S --batch-size B --workers W --device
  cpu --epochs 1 --notest --nosave --consistency_loss`` (plus
  ``--extra-original-args``) in its own Python, timed by
  ``time_original_ssda_yolo.py`` over the same iterations; its median
  seconds per iteration and the main process's peak RSS over them.

Both train YOLOv5-s (deepen 0.33, widen 0.5) at ``--img-size`` on
``--source-per-batch`` + as many target pairs per iteration with
``--num-workers`` dataloader workers, on one generated fog_shapes data set
(the original's layout: ``{source,target}/{images,labels}``,
``*_fake/images``; its data yaml is written beside it). The report gives
the medians over rounds and the ratio mmssda / original of each round.

Example (the figures of docs/performance.md)::

    python tools/analysis_tools/benchmark_vs_original.py \\
        --original path/to/SSDA-YOLO \\
        --original-python path/to/its-venv/bin/python --rounds 3 \\
        --out work_dirs/benchmark_vs_original.json
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'analysis_tools')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config',
                        default=osp.join(REPO, 'configs',
                                         'ssda_yolov5n_fog_shapes.py'))
    parser.add_argument('--original', required=True,
                        help='checkout of the original SSDA-YOLO')
    parser.add_argument('--original-python', required=True,
                        help="the original's Python (its own venv)")
    parser.add_argument('--img-size', type=int, default=256)
    parser.add_argument('--deepen', type=float, default=0.33,
                        help='our YOLO deepen_factor (YOLOv5-s: 0.33)')
    parser.add_argument('--widen', type=float, default=0.5,
                        help='our YOLO widen_factor (YOLOv5-s: 0.5)')
    parser.add_argument('--original-cfg', default='models/yolov5s.yaml',
                        help="the original's model yaml")
    parser.add_argument('--source-per-batch', type=int, default=8)
    parser.add_argument('--num-workers', type=int, default=2)
    parser.add_argument('--iters', type=int, default=30)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads of both main processes (ours: '
                        'torch.set_num_threads; the original: '
                        'OMP_NUM_THREADS). Default: torch\'s choice. Use 1 '
                        'on a busy machine')
    parser.add_argument('--work-dir', default='work_dirs/benchmark_vs_orig')
    parser.add_argument('--extra-ours-args', nargs='*', default=[],
                        help='more benchmark_train.py arguments')
    parser.add_argument(
        '--ours-variants', nargs='+', default=['mmssda'],
        help='mmssda runs per round, each NAME or NAME:OPTION,... where '
        'an OPTION is a config override KEY=VALUE or a benchmark_train.py '
        'flag, e.g. mmssda contiguous:model.channels_last=False '
        'compiled:--compile-student')
    parser.add_argument('--extra-original-args', nargs='*', default=[])
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


def prepare_data(args) -> str:
    """fog_shapes at --img-size with enough images for one epoch of the
    original (it stops at the epoch's end), and the original's data yaml.
    """
    num = (args.warmup + args.iters + 2) * args.source_per_batch
    root = osp.abspath(
        osp.join(args.work_dir, f'fog_shapes_{args.img_size}_{num}'))
    if not osp.isfile(osp.join(root, 'meta.json')):
        sys.path.insert(0, REPO)
        from mmssda.datasets import generate_fog_shapes
        print(f'Generating fog_shapes ({args.img_size} px, {num} images per '
              f'domain) in {root}', flush=True)
        generate_fog_shapes(
            root,
            seed=0,
            num_source=num,
            num_target=num,
            num_val=16,
            img_size=args.img_size)
    with open(osp.join(root, 'original_data.yaml'), 'w') as f:
        f.write(f'path: {root}\n'
                'train_source_real: [source/images]\n'
                'train_source_fake: [source_fake/images]\n'
                'train_target_real: [target/images]\n'
                'train_target_fake: [target_fake/images]\n'
                'test_target_real: [target_val/images]\n'
                'nc: 3\n'
                "names: ['box', 'disc', 'triangle']\n")
    return root


def run(cmd, env=None, cwd=None) -> None:
    print('$ ' + ' '.join(cmd), flush=True)
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f'{cmd[1]} failed:\n{proc.stdout[-4000:]}'
                           f'\n{proc.stderr[-4000:]}')


def parse_variant(spec: str):
    """``NAME:KEY=VALUE,--flag,...`` -> (name, [...])."""
    name, _, options = spec.partition(':')
    return name, [o for o in options.split(',') if o]


def time_ours(args, data_root: str, tmp: str, options=()) -> dict:
    out = osp.join(tmp, 'ours.json')
    cmd = [
        sys.executable,
        osp.join(TOOLS, 'benchmark_train.py'), args.config, '--data-root',
        data_root, '--img-size',
        str(args.img_size), '--deepen',
        str(args.deepen), '--widen',
        str(args.widen),
        '--source-per-batch',
        str(args.source_per_batch), '--target-per-batch',
        str(args.source_per_batch), '--iters',
        str(args.iters), '--warmup',
        str(args.warmup), '--num-workers',
        str(args.num_workers), '--no-val', '--no-source-only', '--work-dir',
        osp.join(args.work_dir, 'ours'), '--out', out
    ] + (['--threads', str(args.threads)] if args.threads else []) + \
        list(args.extra_ours_args) + [o for o in options if o.startswith('--')]
    cfg_options = [o for o in options if not o.startswith('--')]
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    env = dict(os.environ, PYTHONPATH=REPO)
    run(cmd, env=env, cwd=REPO)
    with open(out) as f:
        r = json.load(f)['results']['ssda']
    return dict(
        s_per_iter=r['iter_s']['median'],
        cpu_s_per_iter=r['iter_cpu_s']['median'],
        floor_s=r['floor_s']['median'],
        iter_over_floor=r['ratio_iter_over_floor'],
        peak_rss_main_mb=r['peak_rss_mb']['main'],
        iter_times=r['iter_times'])


def time_original(args, data_root: str, tmp: str) -> dict:
    out = osp.join(tmp, 'original.json')
    train_args = [
        '--weights', '', '--cfg', args.original_cfg, '--data',
        osp.join(data_root, 'original_data.yaml'), '--img-size',
        str(args.img_size),
        str(args.img_size), '--batch-size',
        str(args.source_per_batch), '--workers',
        str(args.num_workers), '--device', 'cpu', '--epochs', '1',
        '--notest', '--nosave', '--consistency_loss', '--project',
        osp.join(tmp, 'original_runs')
    ] + list(args.extra_original_args)
    cmd = [
        args.original_python,
        osp.join(TOOLS, 'time_original_ssda_yolo.py'), '--repo',
        args.original, '--out', out, 'train', '--iters',
        str(args.iters), '--warmup',
        str(args.warmup), '--'
    ] + train_args
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'
    env['WANDB_MODE'] = 'disabled'
    if args.threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(args.threads)
    run(cmd, env=env)
    with open(out) as f:
        r = json.load(f)
    r['command'] = 'python ssda_yolov5_train.py ' + ' '.join(
        repr(a) if a == '' else a for a in train_args)
    return r


def main(argv=None) -> dict:
    args = parse_args(argv)
    data_root = prepare_data(args)
    variants = [parse_variant(v) for v in args.ours_variants]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            result = dict(ours={})
            for name, options in variants:
                print(f'[round {r + 1}/{args.rounds}] {name} ...',
                      flush=True)
                result['ours'][name] = time_ours(args, data_root, tmp,
                                                 options)
            print(f'[round {r + 1}/{args.rounds}] original ...', flush=True)
            result['original'] = time_original(args, data_root, tmp)
            orig = result['original']['s_per_iter']
            result['ratio'] = {
                name: x['s_per_iter'] / orig
                for name, x in result['ours'].items()
            }
            rounds.append(result)
            print('  ' + ', '.join(
                f"{name} {x['s_per_iter']:.3f}"
                for name, x in result['ours'].items()) +
                  f' s/iter; original {orig:.3f} s/iter', flush=True)

    def med(values):
        return statistics.median(values)

    summary = dict(original=dict(
        s_per_iter=med(r['original']['s_per_iter'] for r in rounds),
        cpu_s_per_iter=med(r['original']['cpu_s_per_iter'] for r in rounds),
        peak_rss_main_mb=med(r['original']['peak_rss_main_mb']
                             for r in rounds)))
    for name, _ in variants:
        summary[name] = {
            key: med(r['ours'][name][key] for r in rounds)
            for key in ('s_per_iter', 'cpu_s_per_iter', 'floor_s',
                        'iter_over_floor', 'peak_rss_main_mb')
        }
        summary[name]['ratios'] = [r['ratio'][name] for r in rounds]
        summary[name]['ratio_median'] = med(summary[name]['ratios'])
    print()
    print(f'YOLOv5-s | {args.img_size} px | {args.source_per_batch}+'
          f'{args.source_per_batch} pairs | {args.num_workers} workers | '
          f'{args.warmup} + {args.iters} iterations | '
          f'{args.rounds} interleaved rounds (medians)')
    header = (f"{'':<16}{'s/iter':>9}{'CPU s/it':>9}{'floor s':>9}"
              f"{'iter/floor':>11}{'RSS main':>10}{'/ original':>11}")
    print(header)
    print('-' * len(header))
    for name, _ in variants:
        x = summary[name]
        print(f"{name:<16}{x['s_per_iter']:>9.3f}"
              f"{x['cpu_s_per_iter']:>9.3f}{x['floor_s']:>9.3f}"
              f"{x['iter_over_floor']:>11.3f}"
              f"{x['peak_rss_main_mb']:>9.0f}M"
              f"{x['ratio_median']:>11.3f}")
    x = summary['original']
    print(f"{'original':<16}{x['s_per_iter']:>9.3f}"
          f"{x['cpu_s_per_iter']:>9.3f}{'-':>9}{'-':>11}"
          f"{x['peak_rss_main_mb']:>9.0f}M{1:>11.3f}")
    print('(s/iter: median wall seconds per training iteration; CPU s/it: '
          'CPU seconds of the main process per iteration, workers '
          'excluded; floor: model.loss + backward on a batch in memory; '
          'RSS main: peak of the main process while training; / original: '
          'median over rounds of s/iter over the same round\'s original)')
    for name, _ in variants:
        print(f'{name} / original per round: ' +
              ', '.join(f'{r:.3f}' for r in summary[name]['ratios']))
    print(f"original: {rounds[0]['original']['command']}")
    out = dict(
        meta=dict(vars(args), data_root=data_root),
        summary=summary,
        rounds=rounds)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=2)
        print(f'written {args.out}')
    return out


if __name__ == '__main__':
    main()
