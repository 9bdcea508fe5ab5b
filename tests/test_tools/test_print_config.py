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
