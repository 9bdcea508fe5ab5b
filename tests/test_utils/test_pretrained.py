"""COCO-pretrained starting weights: the recipe's defaults are mmyolo's
published checkpoints; without network tools/train.py says what to do; a
file put where it says is what MMEngine's loader reads; a file that does
not match the hash in its name is named and kept, a download that does not
is not kept."""
import glob
import hashlib
import importlib.util
import os
import os.path as osp
import shutil
import urllib.error

import mmdet
import mmyolo
import pytest
import torch
import torch.hub
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from mmssda.registry import MODELS
from mmssda.utils import (MMYOLO_COCO_CHECKPOINTS, PretrainedWeightsError,
                          prepare_pretrained)
from mmssda.utils.checkpoint import hash_prefix
from tests.conftest import CONFIG_DIR
from tests.test_models.utils import REPO

S_URL = MMYOLO_COCO_CHECKPOINTS['yolov5_s']


def published_weights():
    """Model name -> Weights URL from mmyolo's own metafiles."""
    root = osp.join(osp.dirname(mmyolo.__file__), '.mim', 'configs')
    urls = {}
    for family in ('yolov5', 'yolov8'):
        with open(osp.join(root, family, 'metafile.yml')) as f:
            for model in yaml.safe_load(f)['Models']:
                urls[model['Name']] = model.get('Weights')
    return urls


def every_published_url():
    """Every Weights URL of mmyolo's and mmdet's metafiles."""
    urls = set()
    for package in (mmyolo, mmdet):
        pattern = osp.join(
            osp.dirname(package.__file__), '.mim', 'configs', '*',
            'metafile.yml')
        for path in glob.glob(pattern):
            with open(path) as f:
                meta = yaml.safe_load(f)
                models = meta.get('Models', []) if isinstance(meta, dict) \
                    else []
                for model in models:
                    weights = model.get('Weights') or []
                    urls.update([weights] if isinstance(weights, str) else
                                weights)
    return urls


def test_urls_are_mmyolos_published_ones():
    published = published_weights()
    for name, url in MMYOLO_COCO_CHECKPOINTS.items():
        family, size = name.split('_', 1)
        if family not in ('yolov5', 'yolov8'):
            continue
        key = (f'{family}_{size}-v61_syncbn_fast_8xb16-300e_coco'
               if family == 'yolov5' else
               f'{family}_{size}_syncbn_fast_8xb16-500e_coco')
        assert published[key] == url, name


def test_every_url_is_published_with_a_hash_in_its_name():
    published = every_published_url()
    for name, url in MMYOLO_COCO_CHECKPOINTS.items():
        assert url in published, name
        # what prepare_pretrained and the loader check the file against
        assert hash_prefix(url) is not None, name


@pytest.mark.parametrize('config,load_from', [
    ('configs/ssda_yolov5s_city2foggy.py', S_URL),
    ('configs/source_only_yolov5s_city2foggy.py', S_URL),
    ('configs/oracle_yolov5s_city2foggy.py', S_URL),
    ('configs/ssda_yolov5s_voc2clipart.py', S_URL),
    ('configs/ssda_yolov5l_city2foggy_960.py',
     MMYOLO_COCO_CHECKPOINTS['yolov5_l']),
    ('configs/ssda_yolov8s_city2foggy.py',
     MMYOLO_COCO_CHECKPOINTS['yolov8_s']),
    # the demo configs and the test configs train from scratch or from
    # their own checkpoints
    ('configs/ssda_yolov5n_fog_shapes.py', None),
    ('configs/source_only_yolov5n_fog_shapes.py', None),
    ('configs/oracle_yolov5n_fog_shapes.py', None),
    *[(osp.relpath(p, REPO), None)
      for p in sorted(glob.glob(osp.join(CONFIG_DIR, 'tiny_ssda*.py')))],
])
def test_default_starting_weights(config, load_from):
    cfg = Config.fromfile(osp.join(REPO, config))
    assert cfg.get('load_from') == load_from


def test_every_shipped_config_has_a_known_default():
    for path in glob.glob(osp.join(REPO, 'configs', '*.py')):
        load_from = Config.fromfile(path).get('load_from')
        assert load_from is None or load_from in \
            MMYOLO_COCO_CHECKPOINTS.values(), path


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """torch hub under tmp_path; every download fails like no network."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    calls = []

    def no_network(url, dst, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError('[Errno -3] Temporary failure in name '
                                    'resolution')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    hub_file = osp.join(str(tmp_path), 'torch', 'hub', 'checkpoints',
                        osp.basename(S_URL))
    return hub_file, calls


def _train_module():
    spec = importlib.util.spec_from_file_location(
        'mmssda_train_tool', osp.join(REPO, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_without_network_says_what_to_do(offline_hub, tmp_path,
                                               monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', '0')  # train.py exports it
    hub_file, calls = offline_hub
    config = osp.join(REPO, 'configs', 'ssda_yolov5s_city2foggy.py')
    with pytest.raises(SystemExit) as err:
        _train_module().main(
            [config, '--work-dir', str(tmp_path / 'work')])
    msg = str(err.value.code)
    assert calls == [S_URL]
    assert S_URL in msg  # the URL
    assert hub_file in msg  # where to put the file
    assert '--cfg-options load_from=/path/to/' + osp.basename(S_URL) in msg
    assert '--cfg-options load_from=None' in msg  # from scratch on purpose
    assert 'URLError' in msg
    assert not osp.exists(tmp_path / 'work')  # failed before the runner


def _tiny_ssda_model():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_ssda_fog_shapes.py'))
    with DefaultScope.overwrite_default_scope('mmssda'):
        return MODELS.build(cfg.model)


def _tiny_detector_checkpoint(path):
    """A plain detector checkpoint (as mmyolo publishes) at ``path``."""
    detector = _tiny_ssda_model().student
    with torch.no_grad():
        for i, p in enumerate(detector.parameters()):
            p.fill_(0.001 * (i + 1))
    torch.save({'state_dict': detector.state_dict()}, str(path))
    return detector


def _sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_file_put_where_the_error_says_is_loaded(offline_hub, tmp_path):
    _, calls = offline_hub
    # a published name: <name>-<first 8 hex digits of its sha256>.pth
    made = tmp_path / 'made.pth'
    detector = _tiny_detector_checkpoint(made)
    url = ('https://download.openmmlab.com/mmyolo/v0/yolov5/tiny/'
           f'yolov5_tiny-{_sha256(made)[:8]}.pth')
    with pytest.raises(PretrainedWeightsError, match='put it at') as err:
        prepare_pretrained(url)
    hub_file = str(err.value).split('put it at\n  ')[1].split('\n')[0]
    assert hub_file == osp.join(str(tmp_path), 'torch', 'hub',
                                'checkpoints', osp.basename(url))
    assert not os.listdir(osp.dirname(hub_file))  # no partial download
    os.replace(made, hub_file)
    calls.clear()
    assert prepare_pretrained(url) == url
    model = _tiny_ssda_model()
    # MMEngine's own loading path for `load_from` (the runner calls it)
    load_checkpoint(model, url, map_location='cpu', strict=False)
    assert calls == []  # read from the hub folder, nothing downloaded
    for branch in (model.student, model.teacher):
        for (name, want), got in zip(detector.state_dict().items(),
                                     branch.state_dict().values()):
            assert torch.equal(got, want), name


def test_cached_file_not_matching_its_hash_is_named_and_kept(offline_hub):
    hub_file, calls = offline_hub
    os.makedirs(osp.dirname(hub_file))
    _tiny_detector_checkpoint(hub_file)
    before = _sha256(hub_file)
    with pytest.raises(PretrainedWeightsError) as err:
        prepare_pretrained(S_URL)
    msg = str(err.value)
    assert hub_file in msg
    assert 'expected a SHA-256 starting with 86e02187' in msg
    assert f'got {before[:8]}' in msg
    assert calls == []  # not downloaded again over the user's file
    assert _sha256(hub_file) == before  # left as it was


def test_download_not_matching_its_hash_is_not_kept(offline_hub, tmp_path,
                                                    monkeypatch):
    hub_file, _ = offline_hub
    wrong = tmp_path / 'wrong.pth'
    _tiny_detector_checkpoint(wrong)

    def download(url, dst, *args, **kwargs):
        shutil.copyfile(wrong, dst)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', download)
    with pytest.raises(PretrainedWeightsError, match='86e02187') as err:
        prepare_pretrained(S_URL)
    assert S_URL in str(err.value)
    assert not osp.exists(hub_file)
    assert os.listdir(osp.dirname(hub_file)) == []


def test_local_paths_and_none_pass_through(offline_hub, tmp_path):
    _, calls = offline_hub
    assert prepare_pretrained(None) is None
    local = str(tmp_path / 'missing.pth')
    assert prepare_pretrained(local) == local
    assert calls == []
