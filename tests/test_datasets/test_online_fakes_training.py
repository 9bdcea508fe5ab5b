"""configs/ssda_yolov5n_fog_shapes_online_fda.py trains through
tools/train.py on data without any fake image file."""
import os.path as osp
import shutil

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmssda.registry import DATASETS
from tests.training_helpers import REPO, TRAIN, make_fog_shapes, run_python

CONFIG = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes_online_fda.py')
OFFLINE_CONFIG = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes.py')


@pytest.fixture
def fog_shapes_without_fakes(tmp_path, monkeypatch):
    make_fog_shapes(tmp_path)
    root = tmp_path / 'data' / 'fog_shapes'
    for fakes in ('source_fake', 'target_fake'):
        shutil.rmtree(root / fakes)
    monkeypatch.chdir(tmp_path)
    return root


def _train_datasets(config):
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmssda'):
        return [
            DATASETS.build(d) for d in cfg.train_dataloader.dataset.datasets
        ]


def test_fakes_reference_the_other_domain(fog_shapes_without_fakes):
    root = str(fog_shapes_without_fakes)
    # the recipe with fake files cannot build without them ...
    with pytest.raises(ValueError, match='no fake'):
        _train_datasets(OFFLINE_CONFIG)
    # ... the online one makes each domain's fakes with the other's images
    source, target = _train_datasets(CONFIG)
    for ds, other in ((source, 'target'), (target, 'source')):
        assert ds.fake_root is None
        fda = ds.fake_pipeline.transforms[0]
        assert type(fda).__name__ == 'FDAStyleTransfer'
        assert fda.ref_files and all(
            osp.dirname(osp.abspath(f)) == osp.join(root, other, 'images')
            for f in fda.ref_files)
        out = ds[0]
        assert out['data_samples'][f'{ds.domain}_fake'] is not None
        assert not (out['inputs'][f'{ds.domain}_fake']
                    == out['inputs'][f'{ds.domain}_real']).all()


def test_train_without_fake_files(fog_shapes_without_fakes, tmp_path):
    work_dir = str(tmp_path / 'work')
    log = run_python([
        TRAIN, CONFIG, '--work-dir', work_dir, '--cfg-options',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'train_dataloader.batch_size=4',
        'train_dataloader.sampler.source_per_batch=2',
        'train_dataloader.sampler.target_per_batch=2',
        'optim_wrapper.optimizer.batch_size_per_gpu=4',
        'val_dataloader.batch_size=4', 'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1'
    ], cwd=str(tmp_path), timeout=600)
    # every stream trained, the fakes included
    for key in ('source_real.loss_obj', 'source_fake.loss_obj',
                'distill.loss_obj', 'consistency.loss'):
        assert key in log, key
    assert 'student/pascal_voc/mAP' in log
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
