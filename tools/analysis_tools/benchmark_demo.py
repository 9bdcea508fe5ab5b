"""Repeat the demo's comparison over several training seeds.

    python tools/analysis_tools/benchmark_demo.py --seeds 0 1 2

Each seed runs the four stages of ``tools/demo.py`` (burn-in, source-only,
SSDA, oracle) on the same generated data set, in ``--work-dir/seed_<k>``.
The per-seed tables, their mean and the per-seed SSDA - source-only
differences go to ``--work-dir/results.json`` and ``results.md``. This is a
benchmark, not a test: on 2 CPU cores it takes about 15 minutes a seed.
"""
import argparse
import json
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from demo import CONFIGS, setup  # noqa: E402

from mmssda.apis import prepare_data, run_comparison, write_report  # noqa


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='The demo comparison over several seeds')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/demo_benchmark')
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--burn-in-iters', type=int, default=600)
    parser.add_argument('--adapt-iters', type=int, default=300)
    parser.add_argument('--evals', type=int, default=3)
    return parser.parse_args(argv)


def aggregate(per_seed: dict) -> dict:
    """Mean/std per table cell and SSDA's per-seed gain over source-only."""
    rows = next(iter(per_seed.values()))['table']
    mean = {
        row: {
            metric: dict(
                mean=float(np.mean([s['table'][row][metric]
                                    for s in per_seed.values()])),
                std=float(np.std([s['table'][row][metric]
                                  for s in per_seed.values()])))
            for metric in ('mAP50', 'mAP')
        }
        for row in rows
    }
    gains = {
        seed: s['table']['SSDA student-EMA']['mAP50'] -
        s['table']['source-only']['mAP50']
        for seed, s in per_seed.items()
    }
    gaps = [s['gap_closed'] for s in per_seed.values()
            if s['gap_closed'] is not None]
    return dict(
        mean=mean,
        ssda_minus_source_only_mAP50=gains,
        ssda_beats_source_only_on_every_seed=all(g > 0
                                                 for g in gains.values()),
        gap_closed_mean=float(np.mean(gaps)) if gaps else None)


def format_results(per_seed: dict, agg: dict) -> str:
    seeds = list(per_seed)
    lines = [
        '| target mAP@0.5 | ' + ' | '.join(f'seed {s}' for s in seeds) +
        ' | mean ± std |', '|---' * (len(seeds) + 2) + '|'
    ]
    for row, cells in agg['mean'].items():
        values = ' | '.join(f'{per_seed[s]["table"][row]["mAP50"]:.3f}'
                            for s in seeds)
        m = cells['mAP50']
        lines.append(
            f'| {row} | {values} | {m["mean"]:.3f} ± {m["std"]:.3f} |')
    gains = ', '.join(f'{g:+.3f}'
                      for g in agg['ssda_minus_source_only_mAP50'].values())
    lines += [
        '', f'SSDA student-EMA minus source-only, mAP@0.5 per seed: {gains}',
        'SSDA beats source-only on every seed: '
        f'{agg["ssda_beats_source_only_on_every_seed"]}'
    ]
    if agg['gap_closed_mean'] is not None:
        lines.append('Mean share of the source-only -> oracle gap closed: '
                     f'{100 * agg["gap_closed_mean"]:.0f}%')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    work_dir = osp.abspath(args.work_dir)
    data_root = setup()
    prepare_data(data_root, args.data_seed)
    per_seed = {}
    for seed in args.seeds:
        start = time.perf_counter()
        seed_dir = osp.join(work_dir, f'seed_{seed}')
        runs = run_comparison(CONFIGS, seed_dir, seed, args.burn_in_iters,
                              args.adapt_iters, args.evals)
        per_seed[seed] = write_report(
            runs, CONFIGS['ssda'], seed_dir, args.burn_in_iters, data_root,
            meta=dict(seed=seed, minutes=(time.perf_counter() - start) / 60))
    agg = aggregate(per_seed)
    text = format_results(per_seed, agg)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(dict(settings=vars(args), per_seed=per_seed, **agg), f,
                  indent=2)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(text + '\n')
    print('\n' + text)


if __name__ == '__main__':
    main()
