from .adaptation_benchmark import (format_table, prepare_data, run_comparison,
                                   summarize, write_report)

__all__ = [
    'format_table', 'prepare_data', 'run_comparison', 'summarize',
    'write_report'
]
