import os.path as osp
import sys

import pytest
from mmengine.config import Config

from tests.training_helpers import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
import print_config  # noqa: E402

SHIPPED = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes.py')


def test_prints_and_saves_the_merged_config(tmp_path, capsys):
    """A shipped config is printed with its bases (mmyolo's model, the
    mmssda scope) and the ``--cfg-options`` overrides; ``--save-path``
    writes a config that loads to the same values."""
    save = str(tmp_path / 'sub' / 'merged.py')
    print_config.main([
        SHIPPED, '--cfg-options', 'train_cfg.max_iters=1234',
        'model.semi_train_cfg.pseudo_label_cfg.score_thr=0.33',
        '--save-path', save
    ])
    out = capsys.readouterr().out
    assert out.startswith('Config:\n')
    assert "default_scope = 'mmssda'" in out
    assert 'max_iters=1234' in out
    assert 'score_thr=0.33' in out
    assert "type='SSDADetector'" in out
    assert "type='YOLODetector'" in out  # from the mmyolo base
    saved = Config.fromfile(save)
    assert saved.train_cfg.max_iters == 1234
    assert saved.model.semi_train_cfg.pseudo_label_cfg.score_thr == 0.33
    assert saved.default_scope == 'mmssda'


def test_bad_arguments_name_the_file(tmp_path, capsys):
    """A missing config and a save path of an unknown format are refused
    with the path in the message."""
    missing = str(tmp_path / 'nope.py')
    with pytest.raises(FileNotFoundError, match='nope.py'):
        print_config.main([missing])
    with pytest.raises(SystemExit):
        print_config.parse_args([SHIPPED, '--save-path', 'merged.txt'])
    assert 'merged.txt' in capsys.readouterr().err


def test_a_recipe_variable_is_rederived_as_in_training():
    """``img_scale`` on the command line moves the values computed from it
    (the test pipeline's letterbox), as ``tools/train.py`` merges it; an
    override that cannot take effect stops with an error."""
    cfg = print_config.main(
        [SHIPPED, '--cfg-options', 'img_scale=(128,128)'])
    letterbox = [t for t in cfg.test_dataloader.dataset.pipeline
                 if t.type == 'LetterResize']
    assert [tuple(t.scale) for t in letterbox] == [(128, 128)]
    with pytest.raises(SystemExit, match='error'):
        print_config.main([SHIPPED, '--cfg-options', 'no_such_key=1'])
