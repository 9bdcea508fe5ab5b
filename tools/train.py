"""Train a detector with mmssda's components through the MMEngine runner.

Example:
    python tools/train.py configs/ssda_yolov5s_city2foggy.py
    python tools/train.py CONFIG --work-dir work_dirs/run1 --resume
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from mmssda.apis import CheckpointFileError, resolve_checkpoints
from mmssda.registry import RUNNERS
from mmssda.utils import (PretrainedWeightsError, prepare_pretrained,
                          register_all_modules)
from mmssda.utils.config_overrides import CfgOptionsError, merge_cfg_options


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments tools/train.py and tools/test.py share."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_common(parser: argparse.ArgumentParser,
                 argv=None) -> argparse.Namespace:
    """Parse ``argv``; export the local rank for the launcher."""
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def apply_common_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply launcher, ``--cfg-options`` and the work dir to the config.

    The work dir is, by priority, ``--work-dir``, the config's, or
    ``./work_dirs/<config name>``.
    """
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        try:  # each override takes effect everywhere, or stops here
            merge_cfg_options(cfg, args.cfg_options)
        except CfgOptionsError as e:
            raise SystemExit(f'error: {e}') from e
    cfg.setdefault('default_scope', 'mmssda')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--reuse-work-dir',
        action='store_true',
        help='start a new run (not --resume) in a work dir that holds '
        "another run's checkpoints: checkpoints of the same names are "
        'overwritten, others kept. Without it such a run stops.')
    add_common_args(parser)
    return parse_common(parser, argv)


#: Optimizer wrappers (scope left out) and their AMP variants for ``--amp``.
AMP_OPTIM_WRAPPERS = {
    'OptimWrapper': 'AmpOptimWrapper',
    'NonFiniteSkipOptimWrapper': 'mmssda.NonFiniteSkipAmpOptimWrapper',
}


def amp_optim_wrapper(optim_wrapper: dict) -> dict:
    """The AMP variant of the ``optim_wrapper`` config (``--amp``).

    The wrapper type becomes its AMP variant with dynamic loss scaling; an
    AMP wrapper is kept as it is. Without a GPU,
    ``NonFiniteSkipAmpOptimWrapper`` autocasts to bfloat16 (mmengine's
    ``AmpOptimWrapper`` needs a GPU).
    """
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    name = wrapper_type.split('.')[-1]
    if name in {v.split('.')[-1] for v in AMP_OPTIM_WRAPPERS.values()}:
        print_log(
            'AMP training is already enabled in your config.',
            logger='current')
        return optim_wrapper
    if name not in AMP_OPTIM_WRAPPERS:
        raise ValueError(
            '`--amp` needs optim_wrapper.type to be one of '
            f'{sorted(AMP_OPTIM_WRAPPERS)} (it becomes their AMP variant), '
            f'got {wrapper_type!r}; set an AMP optimizer wrapper in the '
            'config instead.')
    optim_wrapper.type = AMP_OPTIM_WRAPPERS[name]
    optim_wrapper.setdefault('loss_scale', 'dynamic')
    return optim_wrapper


def check_cpu_amp(cfg: Config) -> None:
    """Refuse what cannot run under bfloat16 autocast on the CPU (``--amp``
    without a GPU): a two-stage detector (``model.detector.rpn_head``),
    whose RPN runs mmcv's CPU ``nms`` on bfloat16 scores (it takes float32
    only)."""
    model = cfg.get('model', {})
    detector = model.get('detector', model)
    if 'rpn_head' in detector:
        raise ValueError(
            '`--amp` without a GPU autocasts to bfloat16, and a two-stage '
            'detector (model.detector.rpn_head) then fails in mmcv\'s CPU '
            'nms, which takes float32 only; train it without --amp on the '
            'CPU, or with --amp on a GPU.')


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line's choices to the config."""
    cfg = apply_common_args(cfg, args)
    if args.amp:
        cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper)
        if not torch.cuda.is_available():
            check_cpu_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def _sync_bn_to_bn(node) -> bool:
    """Replace ``type='SyncBN'`` by ``'BN'`` and turn off mmyolo's
    ``YOLODetector(use_syncbn=True)`` in a config tree, in place."""
    changed = False
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            changed = True
        if str(node.get('type', '')).endswith('YOLODetector') \
                or node.get('use_syncbn'):
            changed |= node.get('use_syncbn', True)
            node['use_syncbn'] = False
        for value in node.values():
            changed |= _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            changed |= _sync_bn_to_bn(value)
    return changed


def setup_cpu_distributed(cfg: Config) -> None:
    """Let ``--launcher pytorch`` run on CPU-only machines (gloo).

    MMEngine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device``, which
    fails without CUDA, and DDP must not get ``device_ids`` for CPU modules.
    Without CUDA this initialises the process group itself (the runner then
    skips ``init_dist``) with ``env_cfg.dist_cfg.backend`` (must be
    ``'gloo'``), builds DDP with ``device_ids=None`` and turns the model's
    SyncBN layers (GPU only) into BN.
    """
    import torch
    import torch.distributed as torch_dist
    if cfg.launcher != 'pytorch' or torch.cuda.is_available() \
            or torch_dist.is_initialized():
        return
    dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
    backend = dist_cfg.pop('backend', 'gloo')
    if backend != 'gloo':
        raise ValueError('Distributed training without CUDA needs '
                         "env_cfg.dist_cfg.backend='gloo', got "
                         f'{backend!r}.')
    timeout = dist_cfg.pop('timeout', None)
    if timeout is not None:
        import datetime
        dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(backend='gloo', **dist_cfg)
    if _sync_bn_to_bn(cfg.model):
        print_log(
            'No CUDA: SyncBN layers replaced by BN (SyncBN needs GPUs).',
            logger='current')
    wrapper_cfg = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel')
    wrapper_cfg.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper_cfg


def build_runner(cfg: Config) -> Runner:
    """Build the default runner, or the one named by ``runner_type``."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = merge_args(Config.fromfile(args.config), args)
    check_pretrained(cfg)
    notes = check_checkpoints(cfg, args)
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg)
    for note in notes:
        runner.logger.warning(note)
    runner.train()


def check_pretrained(cfg: Config) -> None:
    """Fetch a ``load_from`` URL before training, or exit saying where to
    put the file and how to train from scratch (not when resuming)."""
    if cfg.get('resume', False):
        return
    try:
        prepare_pretrained(cfg.get('load_from', None))
    except PretrainedWeightsError as e:
        raise SystemExit(f'tools/train.py: error: {e}') from e


def check_checkpoints(cfg: Config, args: argparse.Namespace) -> list:
    """Check the checkpoint to load or resume and the work dir before
    training (:func:`mmssda.apis.resolve_checkpoints`); auto-resume gets the
    checkpoint it found, or the newest good one, as ``cfg.load_from``.
    Returns the warnings for the run's log."""
    notes = []
    try:
        resolve_checkpoints(
            cfg,
            reuse_work_dir=args.reuse_work_dir,
            reuse_option='--reuse-work-dir',
            notes=notes)
    except CheckpointFileError as e:
        raise SystemExit(f'tools/train.py: error: {e}') from e
    return notes


if __name__ == '__main__':
    main()
