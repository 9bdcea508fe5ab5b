import itertools
from types import SimpleNamespace
from unittest import mock

import pytest

from mmssda.datasets import MultiDomainSampler

MODULE = 'mmssda.datasets.samplers.multi_domain_sampler'


def _concat(num_source=10, num_target=7, domains=(None, None)):
    return SimpleNamespace(datasets=[
        _Sized(n, d)
        for n, d in zip((num_source, num_target), domains)
    ])


class _Sized:

    def __init__(self, n, domain):
        self.n, self.domain = n, domain

    def __len__(self):
        return self.n


def _batches(sampler, num, batch_size=None):
    batch_size = batch_size or sampler.source_per_batch + \
        sampler.target_per_batch
    stream = iter(sampler)
    return [list(itertools.islice(stream, batch_size)) for _ in range(num)]


def test_composition_and_domain_epochs():
    sampler = MultiDomainSampler(_concat(), source_per_batch=3,
                                 target_per_batch=2, seed=0, rank=0,
                                 world_size=1)
    batches = _batches(sampler, 14)
    for b in batches:
        assert all(i < 10 for i in b[:3]) and all(10 <= i < 17 for i in b[3:])
    source = [i for b in batches for i in b[:3]]
    target = [i for b in batches for i in b[3:]]
    # every domain epoch is a permutation; the next epoch reshuffles
    assert sorted(source[:10]) == list(range(10))
    assert sorted(source[10:20]) == list(range(10))
    assert source[:10] != source[10:20]
    assert sorted(target[:7]) == list(range(10, 17))
    assert sorted(target[7:14]) == list(range(10, 17))
    assert source[:10] != list(range(10))


def test_reproducible_from_seed():
    make = lambda seed: MultiDomainSampler(  # noqa: E731
        _concat(), 2, 2, seed=seed, rank=0, world_size=1)
    assert _batches(make(3), 12) == _batches(make(3), 12)
    assert _batches(make(3), 12) != _batches(make(4), 12)
    with mock.patch(f'{MODULE}.sync_random_seed', return_value=3):
        assert _batches(MultiDomainSampler(_concat(), 2, 2, rank=0,
                                           world_size=1), 12) == \
            _batches(make(3), 12)


def test_ranks_get_disjoint_shards():
    ranks = []
    for rank in (0, 1):
        with mock.patch(f'{MODULE}.get_dist_info', return_value=(rank, 2)):
            ranks.append(MultiDomainSampler(_concat(10, 7), 1, 1, seed=5))
    assert ranks[0].rank == 0 and ranks[1].world_size == 2
    # 5 batches per rank consume the first source domain epoch exactly
    src = [[b[0] for b in _batches(s, 5)] for s in ranks]
    assert not set(src[0]) & set(src[1])
    assert sorted(src[0] + src[1]) == list(range(10))
    tgt = [[b[1] for b in _batches(s, 4)] for s in ranks]
    assert not set(tgt[0][:3]) & set(tgt[1][:3])
    assert len(set(tgt[0][:4] + tgt[1][:3])) == 7


def test_resume_gives_identical_continuation():
    make = lambda: MultiDomainSampler(  # noqa: E731
        _concat(10, 7), 3, 2, seed=11, rank=1, world_size=2)
    full = _batches(make(), 40)
    resumed = make()
    resumed.seed = 999  # a new run draws another seed ...
    resumed.set_start_iter(17, seed=11)  # ... the loop restores the old one
    assert _batches(resumed, 23) == full[17:]
    # starting again from 0 replays from the beginning
    resumed.set_start_iter(0)
    assert _batches(resumed, 5) == full[:5]
    with pytest.raises(ValueError):
        resumed.set_start_iter(-1)


def test_epoch_length_and_len():
    sampler = MultiDomainSampler(_concat(10, 7), 3, 2, seed=0, rank=0,
                                 world_size=1)
    # (ceil(10 / 3) + ceil(7 / 2)) / 2 = (4 + 4) / 2
    assert sampler.epoch_length == 4
    assert len(sampler) == 4 * 5
    sampler = MultiDomainSampler(_concat(100, 30), 4, 4, seed=0, rank=0,
                                 world_size=2)
    # (ceil(100 / 8) + ceil(30 / 8)) / 2 = (13 + 4) / 2 -> 9
    assert sampler.epoch_length == 9
    sampler.set_epoch(3)  # no effect: the stream is indexed by batch
    assert sampler.epoch_length == 9


def test_bad_arguments():
    with pytest.raises(TypeError, match='ConcatDataset'):
        MultiDomainSampler(_Sized(3, None), seed=0)
    with pytest.raises(ValueError, match=r'\[source, target\]'):
        MultiDomainSampler(_concat(domains=('target', 'source')), seed=0)
    with pytest.raises(ValueError, match='>= 1'):
        MultiDomainSampler(_concat(), 0, 2, seed=0)
    with pytest.raises(ValueError, match='fewer than the 4 ranks'):
        MultiDomainSampler(_concat(10, 3), seed=0, rank=0, world_size=4)
