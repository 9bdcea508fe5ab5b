"""Repeat the demo's comparison over seeds, or ablate SSDA-YOLO's parts.

    python tools/analysis_tools/benchmark_demo.py --seeds 0 1 2
    python tools/analysis_tools/benchmark_demo.py --ablation --seeds 0 1 2 \
        --work-dir work_dirs/ablation
    python tools/analysis_tools/benchmark_demo.py --ablation --fakes weak
    python tools/analysis_tools/benchmark_demo.py --ablation --fakes none

Comparison mode: each seed runs the four stages of ``tools/demo.py``
(burn-in, source-only, SSDA, oracle) on the same generated data set, in
``--work-dir/seed_<k>``; the per-seed tables, their mean and the per-seed
SSDA - source-only differences go to ``--work-dir/results.json`` and
``results.md``. About 12 minutes a seed on 2 CPU cores. Finished stages
are kept (``result.json``): rerunning the same command resumes.

Ablation mode (``--ablation``): per seed one burn-in, then every variant of
:data:`VARIANTS` (the demo's SSDA config with the variant's overrides merged
in) continued from that burn-in for ``--adapt-iters``; then ``best``: the
variants of :data:`BEST_CANDIDATES` that beat the paper's recipe on average,
combined. ``results.md`` holds one table row per variant: the student-EMA's
target mAP@0.5 (mean ± std over seeds of the mean of the last ``--last-k``
evaluations, of the last and of the best), the teacher's, pseudo-boxes per
image and their precision. Finished runs are kept (``result.json`` in each
run's folder): rerunning the same command resumes an interrupted ablation.
``--variants`` picks some.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

import numpy as np
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from demo import (CONFIGS, FAKE_SETTINGS, add_protocol_args,  # noqa: E402
                  setup, stage_configs, stage_overrides)

from mmssda.apis import (aggregate_variants, format_ablation,  # noqa: E402
                         merge_overrides, paired_differences, prepare_data,
                         run_ablation,
                         run_comparison, select_best, write_report)

#: The recipe the ablation variants override, and the burn-in's.
ABLATION_CONFIG = CONFIGS['ssda']
BURN_IN_CONFIG = CONFIGS['burn_in']
#: The recipe's pseudo-label score threshold; the soft distillation's
#: class scores are distilled from the same teacher confidence.
PSEUDO_SCORE_THR = Config.fromfile(
    ABLATION_CONFIG).model.semi_train_cfg.pseudo_label_cfg.score_thr
#: A larger distillation weight than the paper's 0.005.
LARGE_DISTILL_WEIGHT = 0.5
#: Steps over which ``distill_warmup`` ramps the distillation weight up: a
#: third of the demo's 300-iteration adaptation.
DISTILL_WARMUP_ITERS = 100
#: The demo's recipe with strong views for the student's target-real.
STRONG_VIEW_CONFIG = osp.join(
    osp.dirname(ABLATION_CONFIG), 'ssda_yolov5n_fog_shapes_strong_view.py')


def strong_view_overrides(config: str = ABLATION_CONFIG) -> dict:
    """``config``'s training data sets with the strong-view config's target
    pipeline, as overrides."""
    source, target = Config.fromfile(
        config).train_dataloader.dataset.datasets
    strong_target = Config.fromfile(
        STRONG_VIEW_CONFIG).train_dataloader.dataset.datasets[1]
    target.pipeline = strong_target.pipeline
    return dict(
        train_dataloader=dict(
            dataset=dict(datasets=[source.to_dict(),
                                   target.to_dict()])))


#: name -> (table label, overrides of the demo's SSDA config)
VARIANTS = {
    'source_only': ('source-only', dict(
        model=dict(
            distill_loss=None,
            consistency_loss=None,
            semi_train_cfg=dict(supervised_streams=['source_real'])))),
    'source_fake': ('+ source-fake', dict(
        model=dict(distill_loss=None, consistency_loss=None))),
    'consistency': ('+ consistency', dict(model=dict(distill_loss=None))),
    'paper': ('+ distillation (paper recipe, lambda 0.005)', dict()),
    'adaptive_thr': ('paper + adaptive per-class thresholds', dict(
        model=dict(
            adaptive_score_thr=dict(
                type='ClassAdaptiveThreshold',
                floor=0.1,
                ceiling=0.9,
                momentum=0.01)))),
    'soft': ('paper + soft distillation', dict(
        model=dict(
            distill_loss=dict(
                _delete_=True,
                type='YOLOSoftDistillLoss',
                loss_weight=0.005,
                conf_thr=PSEUDO_SCORE_THR)))),
    'strong_views': ('paper + strong views for the student',
                     strong_view_overrides()),
    'ignore': ('paper + `ignore` images without pseudo-labels', dict(
        model=dict(semi_train_cfg=dict(empty_pseudo_policy='ignore')))),
    'distill_weight': (f'paper, lambda {LARGE_DISTILL_WEIGHT}', dict(
        model=dict(distill_loss=dict(loss_weight=LARGE_DISTILL_WEIGHT)))),
    'teacher_target_bn': ('paper + teacher BatchNorm statistics of the '
                          'target', dict(
                              model=dict(semi_train_cfg=dict(
                                  teacher_bn_stats='target')))),
    'student_target_bn': ('paper + student BatchNorm statistics of the '
                          'target', dict(
                              model=dict(semi_train_cfg=dict(
                                  student_bn_stats='target')))),
    'source_only_target_bn': ('source-only + student BatchNorm statistics '
                              'of the target', dict(
                                  model=dict(
                                      distill_loss=None,
                                      consistency_loss=None,
                                      semi_train_cfg=dict(
                                          supervised_streams=['source_real'],
                                          student_bn_stats='target')))),
    'distill_warmup': (f'paper + distillation weight ramped up over '
                       f'{DISTILL_WARMUP_ITERS} steps', dict(
                           model=dict(semi_train_cfg=dict(
                               distill_warmup_iters=DISTILL_WARMUP_ITERS)))),
}
#: The variant every other one is compared with, and the single additions
#: to it whose winners make up ``best`` (merged in this order: with soft
#: distillation and the larger weight, the soft loss gets that weight).
REFERENCE = 'paper'
BEST_CANDIDATES = [
    'adaptive_thr', 'soft', 'strong_views', 'ignore', 'distill_weight',
    'teacher_target_bn', 'student_target_bn', 'distill_warmup'
]
BEST = 'best'
#: Variants that need a source-fake stream, left out with ``--fakes none``
#: (the loop refuses them: the fake is the real image).
NEEDS_FAKES = ('source_fake', 'consistency')


def ablation_variants(fakes: str = 'translated') -> dict:
    """:data:`VARIANTS` for the ``--fakes`` setting: the strong views on
    that setting's data sets, without :data:`NEEDS_FAKES` for ``none``."""
    variants = dict(VARIANTS)
    variants['strong_views'] = (VARIANTS['strong_views'][0],
                                strong_view_overrides(FAKE_SETTINGS[fakes]))
    if fakes == 'none':
        for name in NEEDS_FAKES:
            del variants[name]
    return variants


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='The demo comparison over several seeds, or (with '
        '--ablation) the ablation of SSDA-YOLO\'s parts')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--work-dir', default=None,
                        help='default: work_dirs/demo_benchmark, or '
                        'work_dirs/ablation with --ablation')
    parser.add_argument('--data-seed', type=int, default=0)
    add_protocol_args(parser)
    parser.add_argument(
        '--ablation', action='store_true', help='run the ablation')
    parser.add_argument(
        '--variants',
        nargs='+',
        default=None,
        help=f'ablation variants to run (default: all, then {BEST}); '
        f'one of {sorted(VARIANTS) + [BEST]}')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='settings merged into every run\'s config (the burn-in\'s '
        'too), as in tools/train.py')
    parser.add_argument(
        '--keep-checkpoints',
        action='store_true',
        help='keep each ablation run\'s last checkpoint')
    args = parser.parse_args(argv)
    if args.work_dir is None:
        args.work_dir = 'work_dirs/ablation' if args.ablation \
            else 'work_dirs/demo_benchmark'
        if args.fakes != 'translated':
            args.work_dir += f'_fakes-{args.fakes}'
        if args.detector != 'yolov5':
            args.work_dir += f'_{args.detector}'
    known = ablation_variants(args.fakes)
    unknown = set(args.variants or []) - set(known) - {BEST}
    if unknown:
        parser.error(f'--variants: unknown {sorted(unknown)} with --fakes '
                     f'{args.fakes}; choose from {sorted(known) + [BEST]}')
    return args


def aggregate(per_seed: dict) -> dict:
    """Mean/std per table cell and SSDA's per-seed gain over source-only
    (by the mean of the last evaluations)."""
    rows = next(iter(per_seed.values()))['table']
    metrics = next(iter(rows.values())).keys()
    mean = {
        row: {
            metric: dict(
                mean=float(np.mean([s['table'][row][metric]
                                    for s in per_seed.values()])),
                std=float(np.std([s['table'][row][metric]
                                  for s in per_seed.values()])))
            for metric in metrics
        }
        for row in rows
    }
    gains = {
        seed: s['table']['SSDA student-EMA']['mAP50_mean_last'] -
        s['table']['source-only']['mAP50_mean_last']
        for seed, s in per_seed.items()
    }
    gaps = [s['gap_closed'] for s in per_seed.values()
            if s['gap_closed'] is not None]
    pseudo = [s['num_pseudo'] for s in per_seed.values()
              if s.get('num_pseudo') is not None]
    return dict(
        mean=mean,
        ssda_minus_source_only_mAP50=gains,
        ssda_beats_source_only_on_every_seed=all(g > 0
                                                 for g in gains.values()),
        gap_closed_mean=float(np.mean(gaps)) if gaps else None,
        num_pseudo_mean=float(np.mean(pseudo)) if pseudo else None)


def format_results(per_seed: dict, agg: dict) -> str:
    seeds = list(per_seed)
    k = next(iter(per_seed.values())).get('last_k', 3)
    lines = [
        f'| target mAP@0.5 (mean of last {k}) | ' +
        ' | '.join(f'seed {s}' for s in seeds) +
        ' | mean ± std | last: mean ± std |',
        '|---' * (len(seeds) + 3) + '|'
    ]
    for row, cells in agg['mean'].items():
        values = ' | '.join(
            f'{per_seed[s]["table"][row]["mAP50_mean_last"]:.3f}'
            for s in seeds)
        m, last = cells['mAP50_mean_last'], cells['mAP50']
        lines.append(f'| {row} | {values} | {m["mean"]:.3f} ± '
                     f'{m["std"]:.3f} | {last["mean"]:.3f} ± '
                     f'{last["std"]:.3f} |')
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
    if agg['num_pseudo_mean'] is not None:
        lines.append('Teacher pseudo-boxes per target image during SSDA '
                     f'(mean over seeds): {agg["num_pseudo_mean"]:.2f}')
    return '\n'.join(lines)


def run_overrides(args) -> dict:
    """What every run merges into its config: the ``--detector``'s model,
    then ``--cfg-options``."""
    return merge_overrides(stage_overrides(args.detector), args.cfg_options)


def run_seeds(args, work_dir: str, data_root: str) -> None:
    """Comparison mode (see the module doc)."""
    per_seed = {}
    configs = stage_configs(args.fakes)
    overrides = run_overrides(args)
    for seed in args.seeds:
        start = time.perf_counter()
        seed_dir = osp.join(work_dir, f'seed_{seed}')
        runs = run_comparison(
            configs,
            seed_dir,
            seed,
            args.burn_in_iters,
            args.adapt_iters,
            args.evals,
            continue_schedule=not args.restart_schedule,
            burn_in_evals=args.burn_in_evals,
            reuse=True,
            overrides=overrides)
        per_seed[seed] = write_report(
            runs,
            configs['ssda'],
            seed_dir,
            data_root,
            meta=dict(seed=seed, minutes=(time.perf_counter() - start) / 60),
            last_k=args.last_k,
            overrides=overrides)
    agg = aggregate(per_seed)
    text = format_results(per_seed, agg)
    with open(osp.join(work_dir, 'results.json'), 'w') as f:
        json.dump(dict(settings=vars(args), per_seed=per_seed, **agg), f,
                  indent=2)
    with open(osp.join(work_dir, 'results.md'), 'w') as f:
        f.write(text + '\n')
    print('\n' + text)


def best_overrides(agg: dict, variants: dict = VARIANTS) -> tuple:
    """The ``best`` variant: the candidates that beat the reference, merged
    in :data:`BEST_CANDIDATES` order onto the reference's overrides."""
    chosen = select_best(agg, REFERENCE, BEST_CANDIDATES)
    chosen = [c for c in BEST_CANDIDATES if c in chosen]
    overrides = merge_overrides(variants[REFERENCE][1],
                                *(variants[c][1] for c in chosen))
    return chosen, overrides


def ablation_labels(chosen=None) -> dict:
    labels = {name: label for name, (label, _) in VARIANTS.items()}
    if chosen is not None:
        labels[BEST] = 'best: ' + (REFERENCE_LABEL + ' + ' + ' + '.join(
            _addition(VARIANTS[c][0]) for c in chosen) if chosen else 'none')
    return labels


#: How the table names the reference in the ``best`` row.
REFERENCE_LABEL = 'paper'


def _addition(label: str) -> str:
    """What a variant's label adds to the reference: ``'paper + soft
    distillation'`` -> ``'soft distillation'``."""
    for prefix in (f'{REFERENCE_LABEL} + ', f'{REFERENCE_LABEL}, ', '+ '):
        if label.startswith(prefix):
            return label[len(prefix):]
    return label


def run_ablation_mode(args, work_dir: str) -> dict:
    """Ablation mode (see the module doc); returns what results.json
    holds."""
    known = ablation_variants(args.fakes)
    names = args.variants or [*known, BEST]
    variants = {n: known[n][1] for n in names if n != BEST}
    config = FAKE_SETTINGS[args.fakes]
    state = dict(settings=vars(args), chosen=None)
    results_file = osp.join(work_dir, 'results.json')

    def write(results: dict) -> None:
        # the table in the order of VARIANTS, whatever order they ran in
        order = [*VARIANTS, BEST]
        agg = aggregate_variants(
            {n: results[n]
             for n in sorted(results, key=order.index)})
        text = format_ablation(agg, ablation_labels(state['chosen']),
                               args.last_k,
                               paired_differences(results, REFERENCE),
                               REFERENCE)
        state.update(results=results, aggregate=agg, table=text)
        with open(results_file, 'w') as f:
            json.dump(state, f, indent=2)
        with open(osp.join(work_dir, 'results.md'), 'w') as f:
            f.write(text + '\n')

    os.makedirs(work_dir, exist_ok=True)
    common = dict(
        work_dir=work_dir,
        seeds=args.seeds,
        burn_in_iters=args.burn_in_iters,
        adapt_iters=args.adapt_iters,
        evals=args.evals,
        burn_in_evals=args.burn_in_evals,
        last_k=args.last_k,
        keep_checkpoints=args.keep_checkpoints,
        on_result=write,
        overrides=run_overrides(args))
    results = run_ablation(config, BURN_IN_CONFIG, variants, **common)
    if BEST in names:
        agg = aggregate_variants(results)
        if REFERENCE not in agg:
            raise ValueError(f'--variants: {BEST} needs {REFERENCE}')
        state['chosen'], overrides = best_overrides(agg, known)
        print(f'{BEST}: {state["chosen"]}')
        results = run_ablation(
            config,
            BURN_IN_CONFIG, {BEST: overrides},
            results=results,
            **common)
    write(results)
    print('\n' + state['table'])
    return state


def main(argv=None):
    args = parse_args(argv)
    work_dir = osp.abspath(args.work_dir)
    data_root = setup()
    prepare_data(data_root, args.data_seed)
    if args.ablation:
        if args.restart_schedule:
            raise SystemExit('--ablation runs the continued schedule only')
        return run_ablation_mode(args, work_dir)
    return run_seeds(args, work_dir, data_root)


if __name__ == '__main__':
    main()
