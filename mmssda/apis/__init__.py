from .adaptation_benchmark import (aggregate_variants, detector_overrides,
                                   eval_statistics,
                                   format_ablation, format_table,
                                   merge_overrides, paired_differences,
                                   prepare_data,
                                   pseudo_label_sweep, run_ablation,
                                   run_adaptation, run_burn_in, run_comparison,
                                   select_best, summarize, variant_statistics,
                                   write_report)
from .work_dir_checkpoints import (CheckpointFileError, checkpoint_problem,
                                   find_resume_checkpoint,
                                   read_last_checkpoint, resolve_checkpoints,
                                   step_checkpoints, work_dir_checkpoints)

__all__ = [
    'CheckpointFileError', 'aggregate_variants', 'checkpoint_problem',
    'detector_overrides',
    'find_resume_checkpoint', 'read_last_checkpoint', 'resolve_checkpoints',
    'step_checkpoints', 'work_dir_checkpoints', 'eval_statistics',
    'format_ablation', 'format_table', 'merge_overrides',
    'paired_differences', 'prepare_data',
    'pseudo_label_sweep',
    'run_ablation', 'run_adaptation', 'run_burn_in', 'run_comparison',
    'select_best', 'summarize', 'variant_statistics', 'write_report'
]
