"""Print the fully merged config: the file, its ``_base_`` chain and the
``--cfg-options`` overrides, as the runner receives it.

mmssda's modules are registered first, so that configs which import
``mmssda.utils`` (``scale_recipe``) or list mmssda in ``custom_imports``
load as in ``tools/train.py``.

Example:
    python tools/misc/print_config.py configs/ssda_yolov5s_city2foggy.py \\
        --cfg-options train_cfg.max_iters=1000 \\
        --save-path work_dirs/ssda_yolov5s_city2foggy_full.py
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from mmssda.utils import register_all_modules
from mmssda.utils.config_overrides import CfgOptionsError, merge_cfg_options

SAVE_SUFFIXES = ('.py', '.json', '.yml', '.yaml')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Print the whole config after merging its bases and '
        'the overrides')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--save-path',
        default=None,
        help='also write the merged config to this file (.py, .json, .yml '
        'or .yaml)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs as for '
        'tools/train.py, e.g. train_cfg.max_iters=1000')
    args = parser.parse_args(argv)
    if args.save_path and not args.save_path.endswith(SAVE_SUFFIXES):
        parser.error(f'--save-path must end with one of {SAVE_SUFFIXES}, '
                     f'got {args.save_path!r}')
    return args


def merged_config(config: str, cfg_options: dict = None) -> Config:
    """The config file with its bases and ``cfg_options`` merged as
    ``tools/train.py`` merges them (a recipe variable such as
    ``img_scale`` re-derives the values computed from it; an override that
    would not take effect stops with the keys to set)."""
    if not osp.isfile(config):
        raise FileNotFoundError(f'Config file {config} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        try:  # as tools/train.py: each override takes effect, or stops
            merge_cfg_options(cfg, cfg_options)
        except CfgOptionsError as e:
            raise SystemExit(f'error: {e}') from e
    return cfg


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = merged_config(args.config, args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.save_path:
        folder = osp.dirname(osp.abspath(args.save_path))
        os.makedirs(folder, exist_ok=True)
        cfg.dump(args.save_path)
        print(f'Saved the merged config to {args.save_path}')
    return cfg


if __name__ == '__main__':
    main()
