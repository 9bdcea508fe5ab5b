"""Timing of SSDA training: the real loop, its compute floor, validation.

The pieces of ``tools/analysis_tools/benchmark_train.py``, one job per
function:

- :func:`benchmark_config` retargets a training config (data root, image
  size, batch composition, workers, model size) for a short timed run;
  :func:`source_only_config` turns an SSDA config into its source-only
  baseline;
- :func:`time_train_loop` runs the real MMEngine loop (dataloader, hooks,
  optimizer, logging) and returns the wall time of every iteration;
- :func:`time_floor` times the model work alone (``model.loss`` and
  ``backward`` on one preprocessed batch already in memory);
- :func:`floor_flops` counts the floor's floating-point operations and
  :func:`matmul_gflops` measures the machine's float32 matrix-product
  rate, to read the floor's rate against;
- :func:`time_val_loop` times a validation loop and counts its images;
- :func:`reset_peak_rss` / :func:`peak_rss_mb` read Linux's per-process
  peak resident set size (``VmHWM``) of this process and its children
  (the dataloader workers).
"""
import gc
import json
import multiprocessing
import os
import statistics
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from mmdet.engine.runner import TeacherStudentValLoop
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook

from mmssda.utils import scale_recipe


def _walk(node, fn: Callable[[dict], None]) -> None:
    """Call ``fn`` on every dict inside ``node`` (lists and dicts)."""
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, fn)


def write_json(path: str, obj) -> None:
    """Write a benchmark's results to ``path`` (folders made as needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, indent=2)
    print(f'written {path}')


def _replace_prefix(node, old: str, new: str):
    """``node`` with every string starting with ``old`` re-rooted at
    ``new`` (configs concatenate ``data_root`` into paths at parse time)."""
    if isinstance(node, str):
        return new + node[len(old):] if old and node.startswith(old) \
            else node
    if isinstance(node, dict):
        for key in list(node.keys()):
            node[key] = _replace_prefix(node[key], old, new)
        return node
    if isinstance(node, list):
        return [_replace_prefix(v, old, new) for v in node]
    if isinstance(node, tuple):
        return tuple(_replace_prefix(v, old, new) for v in node)
    return node


def set_img_size(cfg: Config, img_size: int) -> None:
    """Retarget every image-size dependent value to ``img_size``.

    :func:`mmssda.utils.scale_recipe` with ``img_scale=(img_size,
    img_size)``: mosaic cells, affine borders, resizes, letterboxes, batch
    shapes, the top-level ``img_scale`` and the ``loss_obj`` weight.
    """
    scale_recipe(cfg, img_scale=(img_size, img_size))


def set_image_cache(cfg: Config,
                    mode: Optional[str],
                    cache_dir: Optional[str] = None) -> None:
    """Set ``cache`` (and ``cache_dir``) of every ``LoadPairedImageFromFile``
    of the training data (its ``cache_scale`` follows :func:`set_img_size`).
    """

    def switch(node: dict) -> None:
        if str(node.get('type', '')).split('.')[-1] == \
                'LoadPairedImageFromFile':
            node['cache'] = mode
            if cache_dir is not None:
                node['cache_dir'] = cache_dir

    _walk(cfg.get('train_dataloader'), switch)


def set_model_size(cfg: Config,
                   deepen_factor: Optional[float] = None,
                   widen_factor: Optional[float] = None) -> None:
    """Set the YOLO depth/width multipliers of the (student) detector."""
    model = cfg.model.get('detector', cfg.model)
    for part in ('backbone', 'neck'):
        if deepen_factor is not None:
            model[part]['deepen_factor'] = deepen_factor
        if widen_factor is not None:
            model[part]['widen_factor'] = widen_factor
    if widen_factor is not None:
        model.bbox_head.head_module['widen_factor'] = widen_factor


def benchmark_config(config: str,
                     work_dir: str,
                     data_root: Optional[str] = None,
                     img_size: Optional[int] = None,
                     source_per_batch: int = 8,
                     target_per_batch: int = 8,
                     num_workers: int = 2,
                     max_iters: int = 35,
                     deepen_factor: Optional[float] = None,
                     widen_factor: Optional[float] = None,
                     cfg_options: Optional[dict] = None) -> Config:
    """A training config set up for a short timed run.

    Everything a user's run executes per iteration stays (dataloader with
    its workers, every hook, logging at the config's interval, optimizer,
    mean-teacher and student-EMA updates); what is amortised over a long
    run goes: checkpoints are not saved and validation only runs once, at
    the end of training (where the timing ignores it).

    Args:
        config (str): Training config file (SSDA or source-only).
        work_dir (str): Where logs go.
        data_root (str, optional): Replaces the config's ``data_root`` in
            every path. Defaults to None (keep).
        img_size (int, optional): Training/validation image size, see
            :func:`set_img_size`. Defaults to None (keep).
        source_per_batch (int): Source pairs per iteration. Defaults to 8.
        target_per_batch (int): Target pairs per iteration. Defaults to 8.
        num_workers (int): Training dataloader workers. Defaults to 2.
        max_iters (int): Training iterations. Defaults to 35.
        deepen_factor (float, optional): YOLO depth multiplier.
        widen_factor (float, optional): YOLO width multiplier.
        cfg_options (dict, optional): Merged last (``--cfg-options``).

    Returns:
        :obj:`Config`: The config to build the runner from.
    """
    cfg = Config.fromfile(config)
    if data_root is not None:
        old_root = cfg.get('data_root', None)
        data_root = data_root.rstrip('/') + '/'
        cfg_dict = _replace_prefix(cfg.to_dict(), old_root, data_root) \
            if old_root else cfg.to_dict()
        cfg = Config(cfg_dict, filename=cfg.filename)
        cfg.data_root = data_root
    if img_size is not None:
        set_img_size(cfg, img_size)
    if deepen_factor is not None or widen_factor is not None:
        set_model_size(cfg, deepen_factor, widen_factor)
    loader = cfg.train_dataloader
    loader.batch_size = source_per_batch + target_per_batch
    loader.sampler.update(
        source_per_batch=source_per_batch, target_per_batch=target_per_batch)
    loader.num_workers = num_workers
    loader.persistent_workers = num_workers > 0
    if num_workers == 0:
        loader.pop('prefetch_factor', None)
    loader.pin_memory = torch.cuda.is_available()
    cfg.optim_wrapper.optimizer.batch_size_per_gpu = loader.batch_size
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    cfg.load_from = None
    cfg.resume = False
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    cfg.default_hooks.checkpoint = None
    if 'param_scheduler' in cfg.default_hooks and \
            'warmup_iters' in cfg.default_hooks.param_scheduler:
        cfg.default_hooks.param_scheduler.warmup_iters = 0
    # the base config names its visualizer 'visualizer'; a second runner in
    # the same process would reuse the first one's instance
    cfg.visualizer.name = f'benchmark@{work_dir}@{time.time_ns()}'
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def source_only_config(cfg: Config) -> Config:
    """The source-only baseline of an SSDA config.

    The student trains on ``source_real`` with its labels only: no
    distillation (so no teacher forward), no consistency loss. Data, hooks
    and schedule are unchanged (the loader still delivers all four streams,
    as in ``configs/source_only_yolov5n_fog_shapes.py``).
    """
    cfg = Config(cfg.to_dict(), filename=cfg.filename)
    cfg.model.distill_loss = None
    cfg.model.consistency_loss = None
    cfg.model.setdefault('semi_train_cfg', ConfigDict())
    cfg.model.semi_train_cfg.supervised_streams = ['source_real']
    cfg.visualizer.name = f'{cfg.visualizer.name}@source_only'
    return cfg


def fused_config(cfg: Config) -> Config:
    """The config with ``semi_train_cfg.fused_student_forward=True``."""
    cfg = Config(cfg.to_dict(), filename=cfg.filename)
    cfg.model.setdefault('semi_train_cfg', ConfigDict())
    cfg.model.semi_train_cfg.fused_student_forward = True
    cfg.visualizer.name = f'{cfg.visualizer.name}@fused'
    return cfg


def plain_detector_val_config(cfg: Config) -> Config:
    """A plain mmyolo config validating the SSDA config's detector.

    Same detector, data preprocessor, validation data and evaluator; the
    model is the bare detector and the loop mmengine's ``ValLoop`` (what
    ``tools/test.py`` runs for an mmyolo model).
    """
    cfg = Config(cfg.to_dict(), filename=cfg.filename)
    detector = cfg.model.detector
    cfg.model = detector
    cfg.val_cfg = dict(type='ValLoop')
    cfg.custom_hooks = []
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler'):
        cfg.pop(key, None)
    cfg.default_hooks = dict(
        timer=cfg.default_hooks.get('timer'),
        logger=cfg.default_hooks.get('logger'))
    cfg.visualizer.name = f'{cfg.visualizer.name}@plain_val'
    return cfg


class IterEndTimesHook(Hook):
    """Record ``time.perf_counter()`` at the start of training and at the
    end of every training iteration.

    Registered with the lowest priority, it runs after every other hook,
    so consecutive differences are the wall time a user's run pays per
    iteration: fetching the batch from the dataloader, all hooks, the
    train step and logging.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.stamps: List[float] = []
        self.cpu_stamps: List[float] = []

    def before_train(self, runner) -> None:
        self.stamps = [time.perf_counter()]
        self.cpu_stamps = [time.process_time()]

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self.stamps.append(time.perf_counter())
        self.cpu_stamps.append(time.process_time())


def time_train_loop(runner, warmup: int) -> Dict[str, List[float]]:
    """Run ``runner.train()`` and time each iteration after the first
    ``warmup`` ones.

    Args:
        runner (:obj:`mmengine.runner.Runner`): A runner whose
            ``train_cfg.max_iters`` is larger than ``warmup``.
        warmup (int): Iterations not reported (worker start-up, allocator
            and oneDNN warm-up).

    Returns:
        dict: ``wall`` (seconds per timed iteration) and ``cpu`` (CPU
        seconds of this process, all its threads, per timed iteration;
        robust to other load on the machine, the workers not included).
    """
    timer = IterEndTimesHook()
    runner.register_hook(timer, priority='LOWEST')
    runner.train()
    wall = [b - a for a, b in zip(timer.stamps, timer.stamps[1:])]
    cpu = [b - a for a, b in zip(timer.cpu_stamps, timer.cpu_stamps[1:])]
    if len(wall) <= warmup:
        raise ValueError(f'{len(wall)} iterations ran, not more than '
                         f'the {warmup} warm-up iterations')
    return dict(wall=wall[warmup:], cpu=cpu[warmup:])


def shutdown_train_workers(runner) -> None:
    """Stop the training loop's dataloader workers (they would otherwise
    keep prefetching while something else is timed)."""
    iterator = getattr(runner.train_loop, 'dataloader_iterator', None)
    inner = getattr(iterator, '_iterator', None)
    shutdown = getattr(inner, '_shutdown_workers', None)
    if shutdown is not None:
        shutdown()


def first_batch(runner) -> dict:
    """One training batch, loaded in this process (no workers).

    Returns:
        dict: The collated batch, as the train loop gets it.
    """
    return load_batch(runner.train_dataloader)


def load_batch(loader, indices: Optional[Iterator[int]] = None) -> dict:
    """One batch of a dataloader, loaded and collated in this process.

    Args:
        loader (DataLoader): Its sampler, dataset and ``collate_fn`` are
            used; its workers are not.
        indices (Iterator[int], optional): Sample indices to draw from
            (e.g. ``iter(loader.sampler)``, kept across calls). Defaults
            to a fresh iterator of the sampler: its first batch.

    Returns:
        dict: The collated batch, as the train loop gets it.
    """
    if indices is None:
        indices = iter(loader.sampler)
    batch = [next(indices) for _ in range(loader.batch_size)]
    return loader.collate_fn([loader.dataset[i] for i in batch])


def time_data_pipeline(runner, batches: int = 3) -> List[float]:
    """Seconds to load, augment and collate one batch in this process.

    The CPU cost of the data side per iteration, which the workers pay in
    parallel with the model (on few cores they share the same CPUs). It
    runs with this process's torch threads (workers use one): changing
    the thread count here would make oneDNN rebuild its kernels for the
    model afterwards.
    """
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        first_batch(runner)
        times.append(time.perf_counter() - start)
    return times


def floor_step(model: torch.nn.Module, data: dict) -> None:
    """The model work of one training iteration, nothing else.

    ``model.loss`` on a preprocessed batch (for :class:`SSDADetector`: the
    student's forward and loss on each supervised stream and on
    ``target_real``, the teacher's forward and pseudo-labelling on
    ``target_fake``, the consistency loss), the sum of the losses and
    ``backward``. No data loading, preprocessing, hooks, logging,
    optimizer step or teacher/EMA update.
    """
    losses = model.loss(data['inputs'], data['data_samples'])
    loss = sum(v.sum() for k, v in losses.items() if 'loss' in k)
    loss.backward()
    for param in model.parameters():
        param.grad = None


def time_floor(model: torch.nn.Module,
               data_batch: dict,
               iters: int,
               warmup: int = 2) -> Dict[str, List[float]]:
    """Time :func:`floor_step` on one batch already in memory.

    Args:
        model (nn.Module): The (unwrapped) model, in train mode.
        data_batch (dict): A collated batch; preprocessed once, untimed.
        iters (int): Timed repetitions.
        warmup (int): Untimed repetitions first. Defaults to 2.

    Returns:
        dict: ``wall`` and ``cpu`` (this process) seconds per repetition.
    """
    model.train()
    data = model.data_preprocessor(data_batch, True)
    wall, cpu = [], []
    for i in range(warmup + iters):
        start, start_cpu = time.perf_counter(), time.process_time()
        floor_step(model, data)
        if i >= warmup:
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return dict(wall=wall, cpu=cpu)


def floor_flops(model: torch.nn.Module, data_batch: dict) -> int:
    """Floating-point operations of one :func:`floor_step`.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode`, which
    knows the matrix operations (convolutions forward and backward, matrix
    products); element-wise operations (BatchNorm, activations, losses)
    are not counted. A multiply-add counts as 2.

    Args:
        model (nn.Module): The (unwrapped) model, in train mode.
        data_batch (dict): A collated batch; preprocessed here.

    Returns:
        int: The operations of one forward-and-backward floor step.
    """
    from torch.utils.flop_counter import FlopCounterMode
    model.train()
    data = model.data_preprocessor(data_batch, True)
    with FlopCounterMode(display=False) as counter:
        floor_step(model, data)
    return counter.get_total_flops()


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """This machine's float32 matrix-product rate, in GFLOP/s.

    The median over ``repeats`` products of two ``size`` x ``size``
    matrices, with this process's torch threads: what the BLAS reaches on
    the most favourable operation, against which a model's rate can be
    read.
    """
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def to_channels_last(model: torch.nn.Module, enable: bool = True) -> None:
    """Switch an :class:`SSDADetector` to (or back from) channels_last,
    as its ``channels_last`` argument would have built it."""
    fmt = torch.channels_last if enable else torch.contiguous_format
    for part in ('student', 'teacher'):
        getattr(model, part).to(memory_format=fmt)
    model.memory_format = fmt


def compile_student(model: torch.nn.Module) -> None:
    """``torch.compile`` the student's backbone, neck and head module in
    place (``nn.Module.compile``: parameter names and checkpoints are
    unchanged); the loss, the teacher and everything else stay eager."""
    student = model.student
    for part in (student.backbone, student.neck,
                 student.bbox_head.head_module):
        part.compile()


def time_val_loop(runner,
                  repeats: int = 2,
                  warmup: int = 1) -> Dict[str, float]:
    """Time ``runner.val_loop.run()`` and count the images it predicts.

    Args:
        runner (:obj:`mmengine.runner.Runner`): A runner with a
            validation loop (built on first access).
        repeats (int): Timed runs; the median is reported. Defaults to 2.
        warmup (int): Untimed runs first (the first run also builds the
            data set index and the evaluator's ground truth). Defaults to 1.

    Returns:
        dict: ``seconds`` (median per run), ``images`` (the data set
        size), ``passes`` (models evaluated per run: 2 for a
        teacher-and-student loop), ``images_per_s`` (data set images per
        second of the whole loop) and ``images_per_s_per_model``
        (``images * passes`` per second, comparable to a plain loop).
    """
    loop = runner.val_loop
    # ours subclass mmdet's: one pass over the data, two models
    passes = 2 if isinstance(loop, TeacherStudentValLoop) else 1
    num_images = len(loop.dataloader.dataset)
    for _ in range(warmup):
        loop.run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        loop.run()
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return dict(
        seconds=median,
        images=num_images,
        passes=passes,
        images_per_s=num_images / median,
        images_per_s_per_model=num_images * passes / median)


def val_model_states(runner) -> List[dict]:
    """The weights a teacher-and-student validation evaluates, in order.

    The teacher's, then the student's as validation sees it: the
    student-EMA's when a hook (:class:`StudentEMAHook`) swaps it in.
    """
    model = runner.model.module if hasattr(runner.model, 'module') \
        else runner.model
    student = model.student.state_dict()
    for hook in runner.hooks:
        ema = getattr(hook, 'ema_model', None)
        if ema is not None and getattr(hook, 'src_model',
                                       None) is model.student:
            student = ema.module.state_dict()
    return [model.teacher.state_dict(), student]


def time_plain_val(runner, states: Sequence[dict],
                   repeats: int = 2) -> Dict[str, float]:
    """:func:`time_val_loop` of a plain detector, once per set of weights.

    Args:
        runner (:obj:`mmengine.runner.Runner`): A runner of the bare
            detector (:func:`plain_detector_val_config`).
        states (Sequence[dict]): Weights to evaluate one after the other,
            e.g. :func:`val_model_states`, so that the images and
            detections match those of the teacher-and-student loop.
        repeats (int): Timed runs per set of weights. Defaults to 2.

    Returns:
        dict: As :func:`time_val_loop`, ``seconds`` summed over the sets.
    """
    seconds = 0.
    for state in states:
        runner.model.load_state_dict(state)
        timing = time_val_loop(runner, repeats)
        seconds += timing['seconds']
    images = timing['images']
    return dict(
        seconds=seconds,
        images=images,
        passes=len(states),
        images_per_s=images / seconds,
        images_per_s_per_model=images * len(states) / seconds)


def reset_peak_rss() -> None:
    """Reset this process's peak RSS (``/proc/self/clear_refs``, Linux);
    without it, a peak covers the whole process life."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass


def _vm_hwm_mb(pid) -> Optional[float]:
    """Peak RSS (``VmHWM``) of a process in MiB, or None."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def train_worker_pids(runner) -> List[int]:
    """PIDs of the training loop's live dataloader workers."""
    iterator = getattr(runner.train_loop, 'dataloader_iterator', None)
    workers = getattr(getattr(iterator, '_iterator', None), '_workers', [])
    return [w.pid for w in workers if w.is_alive()]


def peak_rss_mb(runner=None) -> Dict[str, float]:
    """Peak RSS of this process and of the dataloader workers (MiB).

    Args:
        runner (:obj:`mmengine.runner.Runner`, optional): Count the
            workers of its training loop; all live child processes when
            None.

    Returns:
        dict: ``main`` (this process since :func:`reset_peak_rss`, or
        ``resource``'s max RSS without ``/proc``), ``workers`` (sum of the
        workers' peaks; pages shared after fork count in each, so this
        over-estimates) and ``total`` (their sum, an upper bound).
    """
    main = _vm_hwm_mb('self')
    if main is None:
        import resource
        main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pids = train_worker_pids(runner) if runner is not None else [
        p.pid for p in multiprocessing.active_children()
    ]
    workers = sum(_vm_hwm_mb(pid) or 0. for pid in pids)
    return dict(main=main, workers=workers, total=main + workers)


def summarize(times: Sequence[float]) -> Dict[str, float]:
    """Median, min and max of a list of seconds."""
    return dict(
        median=statistics.median(times), min=min(times), max=max(times))


def release_memory() -> None:
    """Collect garbage (a finished runner holds its model and loaders) and
    hand freed heap back to the OS (glibc ``malloc_trim``), so that the
    next variant's peak RSS starts from what is really in use."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
