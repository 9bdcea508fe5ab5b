import itertools
import math
from typing import Iterator, Optional, Sized

import numpy as np
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from mmssda.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class MultiDomainSampler(Sampler):
    """Infinite sampler of batches of ``source_per_batch`` source samples
    followed by ``target_per_batch`` target samples.

    ``dataset`` is a :class:`mmengine.dataset.ConcatDataset` of
    ``[source, target]``; the dataloader's ``batch_size`` must be
    ``source_per_batch + target_per_batch`` so that each batch is exactly
    one group of indices (source first).

    Index stream: each domain is visited in epochs; domain epoch ``e`` is the
    permutation ``numpy.random.default_rng([seed, domain, e])`` draws (the
    identity when ``shuffle=False``), and rank ``r`` of ``w`` takes its
    elements ``r::w``, so within a domain epoch the ranks' shards are
    disjoint. When a rank's shard is used up, the next domain epoch starts
    (a new permutation); the two domains roll over independently. Batch
    ``b`` of a rank holds elements ``[b * n, (b + 1) * n)`` of that rank's
    endless source stream (``n = source_per_batch``) and likewise of its
    target stream. The stream is a pure function of ``(seed, rank,
    world_size, batch index)``, which makes resuming exact and free.

    Epoch length (as in SSDA-YOLO, where an epoch is the mean of the source
    and target dataloader lengths), per rank::

        epoch_length = ceil(
            (ceil(len(source) / (world_size * source_per_batch))
             + ceil(len(target) / (world_size * target_per_batch))) / 2)

    and ``len(sampler) = epoch_length * (source_per_batch +
    target_per_batch)``, so ``len(train_dataloader) == epoch_length`` for
    epoch-based schedules (e.g. YOLOv5's warmup).

    Resume: the stream restarts at batch ``n`` after
    ``sampler.set_start_iter(n, seed)`` followed by a fresh
    ``iter(dataloader)``; no sample before batch ``n`` is loaded. MMEngine
    0.10.7's ``IterBasedTrainLoop.run`` instead replays ``n`` times
    ``next(dataloader_iterator)``, i.e. loads and augments every skipped
    batch; a loop using this sampler should call ``set_start_iter(runner.iter,
    runner.seed)`` and rebuild its dataloader iterator instead of replaying.

    Args:
        dataset (Sized): ``ConcatDataset`` of ``[source, target]``.
        source_per_batch (int): Source samples per batch. Defaults to 8.
        target_per_batch (int): Target samples per batch. Defaults to 8.
        seed (int, optional): Seed of the permutations, the same on all
            ranks. None draws one with :func:`mmengine.dist.sync_random_seed`.
            Defaults to None.
        shuffle (bool): Permute each domain epoch. Defaults to True.
        rank (int, optional): Rank; None reads :func:`get_dist_info`.
        world_size (int, optional): World size; None reads
            :func:`get_dist_info`.

    Example:
        >>> train_dataloader = dict(
        ...     batch_size=16,
        ...     sampler=dict(type='MultiDomainSampler', source_per_batch=8,
        ...                  target_per_batch=8, seed=None),
        ...     collate_fn=dict(type='pseudo_collate'),
        ...     dataset=dict(type='ConcatDataset',
        ...                  datasets=[source_paired, target_paired]))
    """

    def __init__(self,
                 dataset: Sized,
                 source_per_batch: int = 8,
                 target_per_batch: int = 8,
                 seed: Optional[int] = None,
                 shuffle: bool = True,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None) -> None:
        self._check_dataset(dataset)
        if source_per_batch < 1 or target_per_batch < 1:
            raise ValueError(
                'MultiDomainSampler: source_per_batch and target_per_batch '
                f'must be >= 1, got {source_per_batch} and '
                f'{target_per_batch}.')
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None \
            else world_size
        self.dataset = dataset
        self.per_batch = (source_per_batch, target_per_batch)
        self.domain_sizes = tuple(len(d) for d in dataset.datasets)
        self.offsets = (0, self.domain_sizes[0])
        for name, size in zip(('source', 'target'), self.domain_sizes):
            if size < self.world_size:
                raise ValueError(
                    f'MultiDomainSampler: the {name} dataset has {size} '
                    f'samples, fewer than the {self.world_size} ranks.')
        self.seed = sync_random_seed() if seed is None else seed
        self.shuffle = shuffle
        self._start_iter = 0

    @staticmethod
    def _check_dataset(dataset: Sized) -> None:
        """Require a two-dataset ConcatDataset, source first."""
        datasets = getattr(dataset, 'datasets', None)
        if datasets is None or len(datasets) != 2:
            raise TypeError(
                'MultiDomainSampler needs `dataset=dict(type=\'ConcatDataset\''
                ', datasets=[source, target])`, got '
                f'{type(dataset).__name__}.')
        domains = [getattr(d, 'domain', None) for d in datasets]
        if domains == ['target', 'source']:
            raise ValueError(
                'MultiDomainSampler: ConcatDataset.datasets must be '
                '[source, target], got [target, source].')

    @property
    def source_per_batch(self) -> int:
        """int: Source samples per batch."""
        return self.per_batch[0]

    @property
    def target_per_batch(self) -> int:
        """int: Target samples per batch."""
        return self.per_batch[1]

    @property
    def epoch_length(self) -> int:
        """int: Batches per epoch on each rank (see the class docstring)."""
        batches = [
            math.ceil(size / (self.world_size * per_batch))
            for size, per_batch in zip(self.domain_sizes, self.per_batch)
        ]
        return math.ceil(sum(batches) / 2)

    def set_start_iter(self, start_iter: int,
                       seed: Optional[int] = None) -> None:
        """Make the next ``iter(self)`` start at batch ``start_iter``.

        Args:
            start_iter (int): Number of batches already consumed, e.g.
                ``runner.iter`` after resuming.
            seed (int, optional): Seed of the interrupted run (``runner.seed``
                after resuming restores it from the checkpoint). None keeps
                the current seed.
        """
        if start_iter < 0:
            raise ValueError(f'start_iter must be >= 0, got {start_iter}.')
        self._start_iter = int(start_iter)
        if seed is not None:
            self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        """Do nothing: the stream is indexed by batch, not by epoch."""

    def _shard(self, domain: int, epoch: int) -> np.ndarray:
        """This rank's share of the permutation of one domain epoch."""
        size = self.domain_sizes[domain]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, domain, epoch])
            order = rng.permutation(size)
        else:
            order = np.arange(size)
        return order[self.rank::self.world_size] + self.offsets[domain]

    def _domain_stream(self, domain: int, start: int) -> Iterator[int]:
        """This rank's endless index stream of a domain from ``start``."""
        shard_len = len(range(self.rank, self.domain_sizes[domain],
                              self.world_size))
        epoch, pos = divmod(start, shard_len)
        while True:
            yield from self._shard(domain, epoch)[pos:].tolist()
            epoch, pos = epoch + 1, 0

    def __iter__(self) -> Iterator[int]:
        streams = [
            self._domain_stream(d, self._start_iter * self.per_batch[d])
            for d in (0, 1)
        ]
        while True:
            for stream, per_batch in zip(streams, self.per_batch):
                yield from itertools.islice(stream, per_batch)

    def __len__(self) -> int:
        """Samples per epoch: ``epoch_length * batch size``."""
        return self.epoch_length * sum(self.per_batch)
