import copy
import logging
import time
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple, Union

from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner.loops import (IterBasedTrainLoop,
                                   _InfiniteDataloaderIterator)
from torch.utils.data import DataLoader

from mmssda.datasets.image_check import check_dataset_images
from mmssda.registry import LOOPS
from mmssda.utils import keep_large_buffers, recipe_mismatches

SAMPLER_SEED_KEY = 'train_sampler_seed'


def init_data_worker(worker_id: int,
                     previous: Optional[Callable[[int], None]] = None
                     ) -> None:
    """A train dataloader worker's init: the dataloader's own (MMEngine's
    seeding), then :func:`keep_large_buffers`."""
    if previous is not None:
        previous(worker_id)
    keep_large_buffers()


@LOOPS.register_module()
class SSDAIterBasedTrainLoop(IterBasedTrainLoop):
    """Iteration-based training loop with a cheap and exact resume.

    MMEngine's :class:`IterBasedTrainLoop` resumes by calling
    ``next(dataloader_iterator)`` once per finished iteration, which loads and
    augments every skipped batch, and it builds its dataloader iterator
    before the checkpoint is loaded. This loop, when the sampler has
    ``set_start_iter(start_iter, seed)`` (e.g. :class:`MultiDomainSampler`):

    1. records the sampler's seed in the message hub's runtime info (saved
       in every checkpoint), so that a sampler built with ``seed=None``
       (a fresh random seed per run) replays the interrupted run's order;
    2. after resuming, calls ``sampler.set_start_iter(runner.iter, seed)``
       and builds a fresh dataloader iterator (with persistent workers this
       resets them onto the new sampler position): no skipped batch is
       loaded;
    3. restores the random states kept by :class:`RandomStateHook`
       right before the first batch is fetched.

    Other samplers fall back to the parent's replay (step 3 still runs,
    after the replay). With ``num_workers=0`` and deterministic settings,
    N iterations in one run and N/2 + resume + N/2 give identical weights;
    for ``num_workers>0`` see :class:`RandomStateHook` (data order exact,
    worker augmentation draws restart from the worker seeds).

    With ``keep_worker_buffers`` each dataloader worker, after its usual
    init, lets malloc reuse freed image-sized buffers
    (:func:`mmssda.utils.keep_large_buffers`) instead of page-faulting on a
    fresh mosaic canvas for every sample; the training process keeps its
    malloc settings.

    With ``check_eval_images``, :meth:`run` first decodes every image of
    the validation set (and of the test set where its dataset config
    differs) once, with the settings of its pipeline's image loader
    (:func:`mmssda.datasets.image_check.check_dataset_images`), and stops
    with the list of missing or damaged files before the first iteration;
    MMEngine reads them first at the first evaluation.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The dataloader or its config.
        max_iters (int): Total training iterations.
        val_begin (int): The iteration that begins validating. Defaults to 1.
        val_interval (int): Validation interval. Defaults to 1000.
        dynamic_intervals (list[tuple[int, int]], optional): Milestones and
            validation intervals used after them. Defaults to None.
        keep_worker_buffers (bool): Call :func:`keep_large_buffers` in each
            dataloader worker. Defaults to True.
        check_eval_images (bool): Decode the validation and test images
            before training. Defaults to True.

    Example:
        >>> train_cfg = dict(type='SSDAIterBasedTrainLoop', max_iters=60000,
        ...                  val_interval=2000)
        >>> custom_hooks = [dict(type='RandomStateHook')]
    """

    def __init__(
            self,
            runner,
            dataloader: Union[DataLoader, Dict],
            max_iters: int,
            val_begin: int = 1,
            val_interval: int = 1000,
            dynamic_intervals: Optional[List[Tuple[int, int]]] = None,
            keep_worker_buffers: bool = True,
            check_eval_images: bool = True) -> None:
        self.check_eval_images = check_eval_images
        if keep_worker_buffers:
            # the parent starts the workers (its iterator) as it builds it
            dataloader = self._with_worker_buffers(runner, dataloader)
        super().__init__(runner, dataloader, max_iters, val_begin,
                         val_interval, dynamic_intervals)
        self._check_batch_composition()
        self._check_recipe_sizes()
        self._check_real_as_fake()
        sampler = self.resumable_sampler
        if sampler is not None and getattr(sampler, 'seed', None) is not None:
            # overwritten by the checkpoint's value when resuming
            self.runner.message_hub.update_info(SAMPLER_SEED_KEY,
                                                int(sampler.seed))

    @staticmethod
    def _with_worker_buffers(runner, dataloader: Union[DataLoader, Dict]
                             ) -> DataLoader:
        """The dataloader (built as MMEngine's loops build it), its
        workers initialised by :func:`init_data_worker`."""
        if isinstance(dataloader, dict):
            diff_rank_seed = runner._randomness_cfg.get(
                'diff_rank_seed', False)
            dataloader = runner.build_dataloader(
                dataloader, seed=runner.seed, diff_rank_seed=diff_rank_seed)
        if dataloader.num_workers > 0:
            dataloader.worker_init_fn = partial(
                init_data_worker, previous=dataloader.worker_init_fn)
        return dataloader

    def _check_batch_composition(self) -> None:
        """Refuse batches that would straddle the domains.

        A sampler with ``source_per_batch``/``target_per_batch`` (e.g.
        :class:`MultiDomainSampler`) yields groups of that many source then
        target indices; the dataloader cuts its stream every ``batch_size``
        indices, so any other ``batch_size`` mixes domains silently. For an
        ``SSDADetector``, YOLOv5's weight-decay scaling
        (``optim_wrapper.optimizer.batch_size_per_gpu``) must count the same
        samples.
        """
        sampler = getattr(self.dataloader, 'sampler', None)
        per_batch = (getattr(sampler, 'source_per_batch', None),
                     getattr(sampler, 'target_per_batch', None))
        if None in per_batch:
            return
        total = sum(per_batch)
        batch_size = getattr(self.dataloader, 'batch_size', None)
        if batch_size != total:
            raise ValueError(
                f'train_dataloader.batch_size={batch_size} must equal '
                'train_dataloader.sampler.source_per_batch '
                f'({per_batch[0]}) + train_dataloader.sampler.'
                f'target_per_batch ({per_batch[1]}) = {total}, or batches '
                'mix source and target samples. When overriding one of '
                'them (e.g. with --cfg-options), set all three (and '
                'optim_wrapper.optimizer.batch_size_per_gpu).')
        cfg = self._ssda_recipe_cfg()
        if cfg is None:
            return
        optimizer = cfg.get('optim_wrapper', {}).get('optimizer', {})
        per_gpu = optimizer.get('batch_size_per_gpu')
        if per_gpu is not None and per_gpu != total:
            raise ValueError(
                f'optim_wrapper.optimizer.batch_size_per_gpu={per_gpu} must '
                f'equal train_dataloader.batch_size ({total} = '
                'source_per_batch + target_per_batch): it scales the '
                'weight decay by the samples per step.')

    def _ssda_recipe_cfg(self):
        """The runner's config if it trains an ``SSDADetector`` (the
        recipe's couplings apply), else None."""
        cfg = getattr(self.runner, 'cfg', None)
        model = cfg.get('model', None) if cfg is not None else None
        if not isinstance(model, dict) or \
                str(model.get('type', '')).split('.')[-1] != 'SSDADetector':
            return None
        return cfg

    def _check_recipe_sizes(self) -> None:
        """Refuse a teacher-student config whose size- and class-dependent
        values do not follow its ``img_scale``/``num_classes`` (see
        :func:`mmssda.utils.scale_recipe`), e.g. after ``--cfg-options
        img_scale=...``, which cannot re-derive them."""
        cfg = self._ssda_recipe_cfg()
        if cfg is None or 'img_scale' not in cfg or 'num_classes' not in cfg:
            return
        stale = recipe_mismatches(cfg)
        if stale:
            raise ValueError(
                f'The config sets img_scale={tuple(cfg.img_scale)} and '
                f'num_classes={cfg.num_classes}, but these values do not '
                'follow them:\n  ' + '\n  '.join(stale) + '\nSet '
                'img_scale/num_classes in a config file that ends with '
                '`scale_recipe(vars())` (mmssda.utils), not with '
                '--cfg-options, which changes only the top-level key.')

    def _check_real_as_fake(self) -> None:
        """Refuse a model that learns from the source-fake stream when the
        source set has no fakes (``fake_pipeline=[dict(type='RealAsFake')]``):
        its loss would repeat the source-real one and the consistency term
        would be zero by construction."""
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        streams = getattr(model, 'supervised_streams', None)
        if streams is None:
            return
        datasets = getattr(self.dataloader.dataset, 'datasets',
                           [self.dataloader.dataset])
        no_fakes = [
            d for d in datasets if getattr(d, 'domain', None) == 'source'
            and type(d).__name__ == 'PairedDataset'
            and d.fake_pipeline is not None and d.fake_pipeline.transforms
            and all(
                type(t).__name__ == 'RealAsFake'
                for t in d.fake_pipeline.transforms)
        ]
        if not no_fakes:
            return
        wrong = []
        if 'source_fake' in streams:
            wrong.append("model.semi_train_cfg.supervised_streams="
                         f"{list(streams)} (set ['source_real'])")
        if getattr(model, 'consistency_loss', None) is not None:
            wrong.append('model.consistency_loss (set None)')
        if wrong:
            raise ValueError(
                'The source set makes its fakes with RealAsFake (no '
                'translated images), so the source-fake stream repeats the '
                'source-real one and the consistency term is zero by '
                'construction; change ' + ' and '.join(wrong) + ', as in '
                'configs/ssda_yolov5n_fog_shapes_no_fakes.py.')

    @property
    def resumable_sampler(self):
        """The dataloader's sampler if it has ``set_start_iter``, else
        None."""
        for sampler in (getattr(self.dataloader, 'sampler', None),
                        getattr(
                            getattr(self.dataloader, 'batch_sampler', None),
                            'sampler', None)):
            if hasattr(sampler, 'set_start_iter'):
                return sampler
        return None

    def _fast_forward(self) -> None:
        """Move the data stream to ``self._iter`` without loading data."""
        sampler = self.resumable_sampler
        if sampler is None:
            # MMEngine's behaviour: load and drop the consumed batches
            print_log(
                f'Advance dataloader {self._iter} steps to skip data that '
                'has already been trained (the sampler has no '
                '`set_start_iter`, so every skipped batch is loaded)',
                logger='current',
                level=logging.WARNING)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
            return
        seed = self.runner.message_hub.get_info(SAMPLER_SEED_KEY)
        if seed is None:
            seed = self.runner.seed
        sampler.set_start_iter(self._iter, seed=seed)
        # drop the old iterator first: non-persistent workers shut down
        self.dataloader_iterator = None
        self.dataloader_iterator = _InfiniteDataloaderIterator(
            self.dataloader)
        print_log(
            f'Resumed the data stream at iteration {self._iter} '
            f'(sampler seed {seed}) without loading skipped batches.',
            logger='current')

    def _restore_random_states(self) -> None:
        """Let every :class:`RandomStateHook` restore the resumed states."""
        for hook in self.runner.hooks:
            restore = getattr(hook, 'restore_random_states', None)
            if callable(restore):
                restore()

    def _check_eval_images(self) -> None:
        """Decode every validation (and distinct test) image once; raise
        ``ValueError`` listing the damaged ones (``check_eval_images``)."""
        if not self.check_eval_images:
            return
        runner = self.runner
        datasets = []
        if runner.val_loop is not None:
            datasets.append(('val_dataloader.dataset',
                             runner.val_loop.dataloader.dataset))
        test_cfg = getattr(runner, '_test_dataloader', None)
        val_cfg = getattr(runner, '_val_dataloader', None)
        if isinstance(test_cfg, dict) and test_cfg.get('dataset') and (
                not isinstance(val_cfg, dict)
                or test_cfg.get('dataset') != val_cfg.get('dataset')):
            datasets.append(('test_dataloader.dataset',
                             runner.build_dataloader(
                                 copy.deepcopy(test_cfg),
                                 seed=runner.seed).dataset))
        for what, dataset in datasets:
            start = time.perf_counter()
            num = check_dataset_images(dataset, what)
            print_log(
                f'Decoded the {num} images of {what} before training in '
                f'{time.perf_counter() - start:.1f} s: none is damaged '
                '(train_cfg.check_eval_images=False skips this).',
                logger='current')

    def run(self):
        """Launch training; resume the data stream and random states
        before the first batch.

        Returns:
            nn.Module: The trained model.
        """
        self._check_eval_images()
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            self._fast_forward()
        self._restore_random_states()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()

            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()

        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
