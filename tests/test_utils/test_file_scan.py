"""Folder scans follow links but see each folder and file once."""
import os
import os.path as osp

import pytest

from mmssda.utils.file_scan import list_files


def _touch(path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    open(path, 'wb').close()


@pytest.fixture
def linked_tree(tmp_path):
    """root/{a.jpg, sub/b.PNG, sub/c.txt}, a loop root/sub/up -> root, a
    second link root/again -> sub, a linked file root/d.jpg -> a.jpg and
    a linked folder root/extra -> an outside folder."""
    root = tmp_path / 'root'
    _touch(str(root / 'a.jpg'))
    _touch(str(root / 'sub' / 'b.PNG'))
    _touch(str(root / 'sub' / 'c.txt'))
    _touch(str(tmp_path / 'outside' / 'e.jpg'))
    os.symlink(str(root), str(root / 'sub' / 'up'))
    os.symlink(str(root / 'sub'), str(root / 'again'))
    os.symlink(str(root / 'a.jpg'), str(root / 'd.jpg'))
    os.symlink(str(tmp_path / 'outside'), str(root / 'extra'))
    return str(root)


def test_links_followed_each_file_once(linked_tree):
    with pytest.warns(UserWarning) as record:
        files = list_files(linked_tree, ('.jpg', '.png'), owner='probe')
    rel = [osp.relpath(f, linked_tree) for f in files]
    assert rel == ['a.jpg', osp.join('extra', 'e.jpg'),
                   osp.join('sub', 'b.PNG')]
    msg = str(record[0].message)
    assert msg.startswith('probe: 2 folder(s) and 1 file(s)')
    for skipped in ('d.jpg', osp.join('sub', 'up'), 'again'):
        assert skipped in msg


def test_plain_tree_no_warning(tmp_path, recwarn):
    for name in ('b/2.jpg', 'a.jpg', 'b/1.jpg', 'c.bmp'):
        _touch(str(tmp_path / name))
    files = list_files(str(tmp_path), ('.jpg', ))
    assert [osp.relpath(f, tmp_path) for f in files] == [
        'a.jpg', osp.join('b', '1.jpg'), osp.join('b', '2.jpg')]
    assert not recwarn.list


def test_fda_references_and_make_fake_images_count_once(linked_tree,
                                                        tmp_path, capsys):
    """The scans of FDA's reference folder and of make_fake_images'
    --src-dir see each image once."""
    import importlib.util

    import cv2
    import numpy as np

    from mmssda.datasets.transforms.fda_style_transfer import list_images
    from tests.training_helpers import REPO
    with pytest.warns(UserWarning, match='reference images'):
        refs = list_images(linked_tree)
    assert len(refs) == 3
    for name in ('a.jpg', 'extra/e.jpg', 'sub/b.PNG'):
        cv2.imwrite(osp.join(linked_tree, name),
                    np.full((16, 16, 3), 128, np.uint8))
    spec = importlib.util.spec_from_file_location(
        'make_fake_images', osp.join(REPO, 'tools', 'misc',
                                     'make_fake_images.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.warns(UserWarning, match='make_fake_images --src-dir'):
        tool.main(['--src-dir', linked_tree, '--out-dir',
                   str(tmp_path / 'out'), '--method', 'fog'])
    assert 'wrote 3 image(s)' in capsys.readouterr().out
