"""Evaluate a checkpoint with the MMEngine runner.

Example:
    python tools/test.py configs/ssda_yolov5s_city2foggy.py CHECKPOINT
"""
import argparse

from mmengine.config import Config

from mmssda.utils import register_all_modules

try:  # run as ``python tools/test.py``
    from train import (add_common_args, apply_common_args, build_runner,
                       parse_common, setup_cpu_distributed)
except ImportError:  # imported as ``tools.test``
    from tools.train import (add_common_args, apply_common_args,
                             build_runner, parse_common,
                             setup_cpu_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    add_common_args(parser)
    return parse_common(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = apply_common_args(Config.fromfile(args.config), args)
    cfg.load_from = args.checkpoint

    if args.show_dir:
        vis = cfg.default_hooks.setdefault(
            'visualization', dict(type='mmdet.DetVisualizationHook'))
        vis.update(draw=True, test_out_dir=args.show_dir)

    if args.out is not None:
        assert args.out.endswith(('.pkl', '.pickle')), \
            'The dump file must be a pkl file.'
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='mmdet.DumpDetResults', out_file_path=args.out))

    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    runner.test()


if __name__ == '__main__':
    main()
