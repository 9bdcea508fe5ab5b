from .adaptation_benchmark import (aggregate_variants, eval_statistics,
                                   format_ablation, format_table,
                                   merge_overrides, prepare_data,
                                   pseudo_label_sweep, run_ablation,
                                   run_adaptation, run_burn_in, run_comparison,
                                   select_best, summarize, variant_statistics,
                                   write_report)

__all__ = [
    'aggregate_variants', 'eval_statistics', 'format_ablation',
    'format_table', 'merge_overrides', 'prepare_data', 'pseudo_label_sweep',
    'run_ablation', 'run_adaptation', 'run_burn_in', 'run_comparison',
    'select_best', 'summarize', 'variant_statistics', 'write_report'
]
