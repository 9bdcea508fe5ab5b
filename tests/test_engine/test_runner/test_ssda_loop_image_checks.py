"""A damaged image in the training, validation or test set stops the run
before its first iteration, with the file's name."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from mmssda.engine.runner import SSDAIterBasedTrainLoop
from tests.conftest import CONFIG_DIR
from tests.fixtures.damaged_images import damage_jpeg_middle, write_textured
from tests.training_helpers import make_fog_shapes, omit_config_text

DATA = osp.join('data', 'fog_shapes')


class FirstIteration(Exception):
    """Raised instead of running the first training iteration."""


@pytest.fixture
def tiny_cfg(tmp_path, monkeypatch):
    make_fog_shapes(tmp_path)
    monkeypatch.chdir(tmp_path)
    omit_config_text(monkeypatch)

    def run_iter(self, data_batch):
        raise FirstIteration

    monkeypatch.setattr(SSDAIterBasedTrainLoop, 'run_iter', run_iter)
    cfg = Config.fromfile(osp.join(CONFIG_DIR,
                                   'tiny_ssda_fog_shapes_eval.py'))
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


def _damage(folder, name):
    path = osp.join(DATA, folder, 'images', name)
    write_textured(path, size=(96, 96))
    damage_jpeg_middle(path)
    return path


def test_damaged_val_image(tiny_cfg):
    path = _damage('target_val', 'target_val_000002.jpg')
    with pytest.raises(ValueError) as err:
        Runner.from_cfg(tiny_cfg).train()
    msg = str(err.value)
    assert msg.startswith('val_dataloader.dataset: 1 of 4 images')
    assert path in msg and 'Corrupt JPEG data' in msg
    tiny_cfg.train_cfg.check_eval_images = False
    with pytest.raises(FirstIteration):
        Runner.from_cfg(tiny_cfg).train()


def test_damaged_test_image(tiny_cfg):
    """A test set other than the validation set is checked too."""
    tiny_cfg.test_dataloader.dataset.update(
        ann_file='annotations/source_val.json',
        data_prefix=dict(img='source_val/images/'))
    path = _damage('source_val', 'source_val_000001.jpg')
    with pytest.raises(ValueError,
                       match=r'test_dataloader.dataset: 1 of 4') as err:
        Runner.from_cfg(tiny_cfg).train()
    assert path in str(err.value)


def test_damaged_train_image(tiny_cfg):
    """A damaged fake of the target set (PairedDataset's decode check)."""
    path = _damage('target_fake', 'target_000003.jpg')
    with pytest.raises(ValueError, match='Damaged image') as err:
        Runner.from_cfg(tiny_cfg).train()
    assert path in str(err.value)
