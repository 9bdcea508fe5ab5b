"""tools/misc/make_fake_images.py on a tiny folder."""
import importlib.util
import os.path as osp

import cv2
import numpy as np
import pytest

from mmssda.datasets.transforms.atmospheric_fog import (apply_atmospheric_fog,
                                                        ground_plane_depth)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'make_fake_images',
        osp.join(REPO, 'tools', 'misc', 'make_fake_images.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    src, ref = tmp_path / 'src', tmp_path / 'ref'
    (src / 'city_a').mkdir(parents=True)
    (src / 'city_b').mkdir()
    ref.mkdir()
    names = ['city_a/x_1.png', 'city_a/x_2.jpg', 'city_b/y_1.png']
    for name in names:
        img = rng.integers(0, 120, (40, 56, 3)).astype(np.uint8)
        cv2.imwrite(str(src / name), img)
    (src / 'city_b' / 'notes.txt').write_text('ignored')
    for i in range(3):
        img = rng.integers(180, 255, (30, 30, 3)).astype(np.uint8)
        cv2.imwrite(str(ref / f'fog_{i}.png'), img)
    return str(src), str(ref), str(tmp_path / 'out'), names


def test_fda_writes_same_relative_paths(tool, folders, capsys):
    src, ref, out, names = folders
    argv = ['--src-dir', src, '--ref-dir', ref, '--out-dir', out,
            '--method', 'fda', '--beta', '0.05', '--seed', '1']
    assert tool.main(argv) == 0
    assert 'wrote 3 image(s)' in capsys.readouterr().out
    for name in names:
        real = cv2.imread(osp.join(src, name))
        fake = cv2.imread(osp.join(out, name))
        assert fake.shape == real.shape and fake.dtype == np.uint8
        # brighter, like the references (the mean is transferred)
        assert fake.mean() > real.mean() + 50
    assert not osp.exists(osp.join(out, 'city_b', 'notes.txt'))
    first = cv2.imread(osp.join(out, names[0]))
    # refuses to overwrite, names an existing file, writes nothing
    with pytest.raises(SystemExit, match='--force') as exc:
        tool.main(argv)
    assert 'x_1.png' in str(exc.value.code)
    # --force rewrites; the same seed gives the same images
    assert tool.main(argv + ['--force']) == 0
    np.testing.assert_array_equal(cv2.imread(osp.join(out, names[0])), first)


def test_fog_method(tool, folders):
    src, _, out, names = folders
    assert tool.main(['--src-dir', src, '--out-dir', out, '--method', 'fog',
                      '--beta', '0.03', '--airlight', '0.9']) == 0
    real = cv2.imread(osp.join(src, names[0]))
    expected = apply_atmospheric_fog(real, ground_plane_depth(40, 56), 0.03,
                                     0.9)
    np.testing.assert_array_equal(cv2.imread(osp.join(out, names[0])),
                                  expected)


def test_clear_errors(tool, folders, tmp_path):
    src, ref, out, _ = folders
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(SystemExit, match='no images .*empty'):
        tool.main(['--src-dir', str(empty), '--out-dir', out,
                   '--method', 'fog'])
    with pytest.raises(SystemExit, match='--ref-dir'):
        tool.main(['--src-dir', src, '--out-dir', out, '--method', 'fda'])
    with pytest.raises(SystemExit, match='no reference images'):
        tool.main(['--src-dir', src, '--ref-dir', str(empty),
                   '--out-dir', out])
    with open(osp.join(src, 'city_b', 'broken.jpg'), 'wb') as f:
        f.write(b'not a jpeg')
    with pytest.raises(SystemExit, match='broken.jpg'):
        tool.main(['--src-dir', src, '--ref-dir', ref, '--out-dir', out])
