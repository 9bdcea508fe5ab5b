"""A checkpoint whose unpickling would run code is refused on every load
path (local file, ``https://``, ``open-mmlab://``, a file in torch hub's
cache, the runner's ``load_from`` and ``resume``, tools/train.py,
tools/test.py, extract_detector.py): the payload never runs and the error
names the file. Model zoo names (``open-mmlab://``, ``mmcls://``) are
checked against the hash in their file name first. A checkpoint MMEngine
writes still loads from a local file, ``http(s)://``, ``open-mmlab://``
and through ``resume``. Downloads are faked by copying local files (no
network)."""
import hashlib
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest
import torch
import torch.hub
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint

from mmssda.utils import (CheckpointHashError, UnsafeCheckpointError,
                          register_all_modules)
from mmssda.utils.checkpoint import SAFE_SCHEMES
from tests.conftest import CONFIG_DIR
from tests.test_models.utils import REPO

URL = 'https://download.example.org/models/weights.pth'


class _Payload:
    """Unpickles as ``open(marker, 'w')``: creates ``marker`` if it runs."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, 'w')


class _ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


def _legit_state():
    torch.manual_seed(0)
    return _ToyModel().state_dict()


def write_crafted(path, marker):
    """A checkpoint with real weights and one object that runs code."""
    torch.save(dict(state_dict=_legit_state(), meta=dict(x=_Payload(marker))),
               str(path))
    return str(path)


def write_legit(path):
    """What MMEngine writes: weights, numpy metadata, message hub state."""
    from mmengine.logging import MessageHub
    hub = MessageHub('test_safe_load_hub')
    hub.update_scalar('train/loss', np.float64(0.5))
    torch.save(
        dict(
            state_dict=_legit_state(),
            meta=dict(seed=np.int64(3), iter=2),
            message_hub=hub.state_dict()), str(path))
    return str(path)


def hashed_name(path, stem='weights'):
    """``<stem>-<first 8 hex of sha256>.pth`` of the file at ``path``."""
    with open(path, 'rb') as f:
        return f'{stem}-{hashlib.sha256(f.read()).hexdigest()[:8]}.pth'


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """torch hub and MMEngine's home under tmp_path; downloads copy the
    file registered for the URL in ``sources`` (others fail)."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine'))
    sources, calls = {}, []

    def fake_download(url, dst, *args, **kwargs):
        calls.append(url)
        if url not in sources:
            raise OSError(f'no network in tests: {url}')
        shutil.copyfile(sources[url], dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', fake_download)
    folder = tmp_path / 'torch' / 'hub' / 'checkpoints'
    return dict(sources=sources, calls=calls, folder=folder)


def _assert_refused(err, marker, name):
    assert not osp.exists(marker), 'the payload ran'
    msg = str(err.value)
    assert name in msg
    assert 'io.open' in msg  # the refused global
    assert 'weights_only=False' in msg and 'converted.pth' in msg


def _assert_legit(checkpoint):
    for key, value in _legit_state().items():
        assert torch.equal(checkpoint['state_dict'][key], value), key
    assert checkpoint['message_hub']['log_scalars']['train/loss'].mean() \
        == pytest.approx(0.5)


def test_every_mmengine_scheme_has_a_safe_loader():
    register_all_modules(init_default_scope=False)
    safe = {loader for _, loader in SAFE_SCHEMES}
    assert len(CheckpointLoader._schemes) >= 11
    for prefix, loader in CheckpointLoader._schemes.items():
        assert loader in safe, prefix


def test_local_file(tmp_path, monkeypatch):
    # even where torch is told to unpickle everything by default
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    marker = tmp_path / 'ran'
    crafted = write_crafted(tmp_path / 'crafted.pth', marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(_ToyModel(), crafted, map_location='cpu')
    _assert_refused(err, marker, crafted)
    assert err.value.refused == 'io.open'
    legit = write_legit(tmp_path / 'legit.pth')
    _assert_legit(CheckpointLoader.load_checkpoint(legit, 'cpu'))


def test_https_download(tmp_path, hub):
    marker = tmp_path / 'ran'
    hub['sources'][URL] = write_crafted(tmp_path / 'crafted.pth', marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(_ToyModel(), URL, map_location='cpu')
    _assert_refused(err, marker, URL)
    assert str(hub['folder'] / 'weights.pth') in str(err.value)
    assert hub['calls'] == [URL]

    legit = write_legit(tmp_path / 'legit.pth')
    url = 'http://download.example.org/' + hashed_name(legit)
    hub['sources'][url] = legit
    _assert_legit(CheckpointLoader.load_checkpoint(url, 'cpu'))
    assert osp.isfile(hub['folder'] / osp.basename(url))
    # read from the hub folder the second time (and hash-checked again)
    _assert_legit(CheckpointLoader.load_checkpoint(url, 'cpu'))
    assert hub['calls'] == [URL, url]


def test_file_already_in_torch_hub_cache(tmp_path, hub):
    marker = tmp_path / 'ran'
    hub['folder'].mkdir(parents=True)
    cached = write_crafted(hub['folder'] / 'weights.pth', marker)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(_ToyModel(), URL, map_location='cpu')
    _assert_refused(err, marker, cached)
    assert hub['calls'] == []  # nothing downloaded
    assert osp.isfile(cached)  # the user's file is left alone


def test_open_mmlab_scheme(tmp_path, hub):
    marker = tmp_path / 'ran'
    legit = write_legit(tmp_path / 'legit.pth')
    legit_url = 'https://download.example.org/' + hashed_name(legit)
    hub['sources'].update({
        URL: write_crafted(tmp_path / 'crafted.pth', marker),
        legit_url: legit
    })
    # MMEngine reads extra names from $MMENGINE_HOME/open_mmlab.json
    os.makedirs(tmp_path / 'mmengine')
    with open(tmp_path / 'mmengine' / 'open_mmlab.json', 'w') as f:
        json.dump(dict(crafted=URL, legit=legit_url), f)
    for prefix in ('open-mmlab://', 'openmmlab://'):
        with pytest.raises(UnsafeCheckpointError) as err:
            load_checkpoint(_ToyModel(), prefix + 'crafted')
        _assert_refused(err, marker, URL)
        _assert_legit(CheckpointLoader.load_checkpoint(prefix + 'legit'))


def test_model_zoo_names_are_hash_checked(tmp_path, hub):
    """mmengine's own names carry a hash: other content is refused before
    it is unpickled, and the downloaded file is not kept."""
    marker = tmp_path / 'ran'
    from mmengine.runner.checkpoint import (get_external_models,
                                            get_mmcls_models)
    for name, url in (('open-mmlab://vgg16_caffe',
                       get_external_models()['vgg16_caffe']),
                      ('mmcls://vgg11', get_mmcls_models()['vgg11'])):
        hub['sources'][url] = write_crafted(tmp_path / 'crafted.pth', marker)
        with pytest.raises(CheckpointHashError) as err:
            load_checkpoint(_ToyModel(), name)
        assert not osp.exists(marker)
        assert url in str(err.value)
        expected = osp.basename(url).rsplit('-', 1)[1].split('.')[0]
        assert f'expected a SHA-256 starting with {expected}' in \
            str(err.value)
        assert not osp.exists(hub['folder'] / osp.basename(url))
    assert os.listdir(hub['folder']) == []  # no partial file left


def test_cached_file_with_wrong_hash_is_left_in_place(tmp_path, hub):
    hub['folder'].mkdir(parents=True)
    cached = write_legit(hub['folder'] / 'weights-0123abcd.pth')
    before = open(cached, 'rb').read()
    url = 'https://download.example.org/weights-0123abcd.pth'
    with pytest.raises(CheckpointHashError) as err:
        CheckpointLoader.load_checkpoint(url)
    msg = str(err.value)
    assert cached in msg and '0123abcd' in msg
    with open(cached, 'rb') as f:
        actual = hashlib.sha256(f.read()).hexdigest()
    assert actual[:8] in msg
    assert open(cached, 'rb').read() == before
    assert hub['calls'] == []


def _runner(tmp_path, name, **kwargs):
    data = [dict(inputs=torch.ones(2))] * 2
    return Runner(
        model=_ToyModel(),
        work_dir=str(tmp_path / name),
        train_dataloader=dict(
            dataset=data,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=10),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=1,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine',
        experiment_name=name,
        **kwargs)


def test_runner_load_from_and_resume(tmp_path):
    marker = tmp_path / 'ran'
    crafted = write_crafted(tmp_path / 'crafted.pth', marker)
    for resume in (False, True):
        runner = _runner(tmp_path, f'crafted_{resume}', load_from=crafted,
                         resume=resume)
        with pytest.raises(UnsafeCheckpointError) as err:
            runner.load_or_resume()
        _assert_refused(err, marker, crafted)
    # what the runner writes resumes (message hub, numpy, optimizer)
    first = _runner(tmp_path, 'first')
    first.train()
    saved = str(tmp_path / 'first' / 'iter_1.pth')
    resumed = _runner(tmp_path, 'resumed', load_from=saved, resume=True)
    resumed.load_or_resume()
    assert resumed.iter == 1
    weights = torch.load(saved, weights_only=True)['state_dict']
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_extract_detector_refuses(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
    import extract_detector
    marker = tmp_path / 'ran'
    crafted = write_crafted(tmp_path / 'crafted.pth', marker)
    out = tmp_path / 'plain.pth'
    config = osp.join(CONFIG_DIR, 'tiny_ssda_fog_shapes.py')
    with pytest.raises(UnsafeCheckpointError) as err:
        extract_detector.main([config, crafted, str(out)])
    _assert_refused(err, marker, crafted)
    assert not out.exists() and not (tmp_path / 'plain.py').exists()


def test_train_tool_with_an_https_load_from(tmp_path, hub, monkeypatch):
    """tools/train.py with ``load_from`` an ``https://`` URL whose file in
    torch hub's cache is crafted: refused before the first iteration."""
    import runpy

    from tests.conftest import make_coco_shapes
    from tests.training_helpers import TRAIN, omit_config_text
    root = str(tmp_path / 'data')
    make_coco_shapes(root, num_images=2, size=64)
    marker = tmp_path / 'ran'
    hub['folder'].mkdir(parents=True)
    cached = write_crafted(hub['folder'] / 'weights.pth', marker)
    omit_config_text(monkeypatch)
    monkeypatch.setenv('LOCAL_RANK', '0')  # train.py exports it
    train = runpy.run_path(TRAIN, run_name='mmssda_train_tool')
    work_dir = tmp_path / 'work'
    with pytest.raises(UnsafeCheckpointError) as err:
        train['main']([
            osp.join(CONFIG_DIR, 'tiny_yolov5.py'), '--work-dir',
            str(work_dir), '--cfg-options', f'load_from={URL}',
            f'train_dataloader.dataset.data_root={root}/',
            'train_cfg.max_epochs=1',
            'default_hooks.param_scheduler.max_epochs=1', 'val_cfg=None',
            'val_dataloader=None', 'val_evaluator=None'
        ])
    _assert_refused(err, marker, cached)
    assert hub['calls'] == []
    assert not [n for n in os.listdir(work_dir) if n.endswith('.pth')]


@pytest.mark.parametrize('rank', [0, 1])
def test_distributed_failure_still_reaches_the_barrier(tmp_path, hub,
                                                       monkeypatch, rank):
    """A failed hash check on any rank of two still enters the barrier the
    other rank waits in, then raises (no rank waits forever)."""
    import mmengine.dist
    barriers = []
    monkeypatch.setattr(mmengine.dist, 'get_dist_info', lambda: (rank, 2))
    monkeypatch.setattr(torch.distributed, 'barrier',
                        lambda *a, **k: barriers.append(rank))
    url = 'https://download.example.org/weights-0123abcd.pth'
    hub['sources'][url] = write_legit(tmp_path / 'wrong.pth')
    with pytest.raises(CheckpointHashError, match='0123abcd'):
        CheckpointLoader.load_checkpoint(url, logger='silent')
    assert barriers == [rank]
    assert os.listdir(hub['folder']) == []


def test_test_tool_refuses(tmp_path, monkeypatch):
    """tools/test.py given a crafted checkpoint: refused before the first
    test batch."""
    import runpy

    from tests.conftest import make_coco_shapes
    from tests.training_helpers import omit_config_text
    root = str(tmp_path / 'data')
    make_coco_shapes(root, num_images=2, size=64)
    marker = tmp_path / 'ran'
    crafted = write_crafted(tmp_path / 'crafted.pth', marker)
    omit_config_text(monkeypatch)
    monkeypatch.syspath_prepend(osp.join(REPO, 'tools'))
    test_tool = runpy.run_path(
        osp.join(REPO, 'tools', 'test.py'), run_name='mmssda_test_tool')
    ann = osp.join(root, 'annotations', 'train.json')
    with pytest.raises(UnsafeCheckpointError) as err:
        test_tool['main']([
            osp.join(CONFIG_DIR, 'tiny_yolov5.py'), crafted, '--work-dir',
            str(tmp_path / 'work'), '--cfg-options',
            f'test_dataloader.dataset.data_root={root}/',
            f'test_evaluator.ann_file={ann}'
        ])
    _assert_refused(err, marker, crafted)
