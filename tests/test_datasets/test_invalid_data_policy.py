"""Bad-data battery: every problem is named, listed together, and the
'skip' policy drops exactly the invalid samples.

Already covered elsewhere: degenerate / out-of-image boxes (clipped or
dropped with a count: test_yolo_txt_dataset.py), real/fake size mismatch
(resized with one warning: test_paired_load_and_pack.py).
"""
import os
import os.path as osp

import pytest

from mmssda.datasets import PairedDataset, YOLOTxtDataset

CLASSES = ('square', 'disc')


def _truncate(path, n=10):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:-n])


def _break_yolo(root):
    """Of 5 images, break 4 in 4 different ways."""
    labels = osp.join(root, 'labels')
    os.remove(osp.join(labels, '0000.txt'))  # missing label file
    with open(osp.join(labels, '0001.txt'), 'wb') as f:
        f.write(b'\xff\xfe\x00binary')  # unreadable label file
    with open(osp.join(labels, '0002.txt'), 'w') as f:
        f.write('7 0.5 0.5 0.1 0.1\n')  # class id out of range
    _truncate(osp.join(root, 'images', '0003.jpg'))  # truncated image


def _yolo(root, **kwargs):
    return YOLOTxtDataset(data_root=root, data_prefix=dict(img='images/'),
                          metainfo=dict(classes=CLASSES), **kwargs)


def test_yolo_raise_lists_every_problem(tmp_path, pair_data):
    data = pair_data(tmp_path / 'd', num=5)
    _break_yolo(data['root'])
    with pytest.raises(ValueError) as err:
        _yolo(data['root'])
    msg = str(err.value)
    assert '4 of 5 images' in msg and "invalid_policy='skip'" in msg
    assert msg.count('\n  - ') == 4
    for needle in (r'0000.txt', 'not found', 'Unreadable label file',
                   '0001.txt', 'Class id 7 out of range', '0002.txt',
                   'Truncated image', '0003.jpg'):
        assert needle in msg, needle


def test_yolo_skip_drops_invalid_with_one_warning(tmp_path, pair_data):
    data = pair_data(tmp_path / 'd', num=5)
    _break_yolo(data['root'])
    with pytest.warns(UserWarning) as record:
        ds = _yolo(data['root'], invalid_policy='skip')
    assert len(ds) == 1
    assert ds.get_data_info(0)['img_path'].endswith('0004.jpg')
    assert ds.get_data_info(0)['img_id'] == 5
    skipped = [str(w.message) for w in record if 'skipped' in str(w.message)]
    assert len(skipped) == 1
    assert 'skipped 4 of 5' in skipped[0]
    for stem in ('0000', '0001', '0002', '0003'):
        assert stem in skipped[0]
    with pytest.raises(ValueError, match='invalid_policy'):
        _yolo(data['root'], invalid_policy='ignore')


def _paired(data, helpers, **kwargs):
    inner = helpers['inner_cfg']('yolo', data['root'])
    return PairedDataset(dataset=inner, fake_root=data['fake_root'],
                         **kwargs)


def _break_pairs(data):
    fake = data['fake_root']
    os.remove(osp.join(fake, '0001.png'))  # missing fake
    with open(osp.join(fake, '0002.png'), 'wb') as f:
        f.write(b'garbage')  # corrupt fake
    _truncate(osp.join(data['root'], 'images', '0003.jpg'))  # truncated real


def test_paired_raise_lists_every_problem(tmp_path, pair_data,
                                          paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=5)
    _break_pairs(data)
    # the real-image problem is the inner YOLOTxtDataset's: its own list
    with pytest.raises(ValueError, match=r'Truncated image .*0003\.jpg'):
        _paired(data, paired_helpers)
    inner = paired_helpers['inner_cfg']('coco', data['root'])
    with pytest.raises(ValueError) as err:
        PairedDataset(dataset=inner, fake_root=data['fake_root'])
    msg = str(err.value)
    assert '3 of 5 pairs' in msg and msg.count('\n  - ') == 4
    assert '1 of 5 real images have no fake' in msg
    assert 'Missing fake image' in msg and osp.join('fake', '0001') in msg
    assert 'Unreadable image' in msg and osp.join('fake', '0002.png') in msg
    assert 'Truncated image' in msg and '0003.jpg' in msg


def test_paired_skip_drops_pairs_and_forwards_policy(tmp_path, pair_data,
                                                     paired_helpers,
                                                     mmssda_scope):
    data = pair_data(tmp_path / 'd', num=5)
    _break_pairs(data)
    with pytest.warns(UserWarning, match='skipped'):
        ds = _paired(data, paired_helpers, invalid_policy='skip')
    # the inner YOLOTxtDataset got the policy (it dropped 0003 itself)
    assert ds.dataset.invalid_policy == 'skip'
    assert len(ds) == 2
    for i, stem in enumerate(('0000', '0004')):
        info = ds.get_data_info(i)
        assert info['img_path'].endswith(stem + '.jpg')
        assert info['fake_img_path'].endswith(stem + '.png')


def test_empty_target_set_is_an_error(tmp_path, pair_data, paired_helpers,
                                      mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2)
    inner = paired_helpers['inner_cfg'](
        'coco', data['root'], filter_cfg=dict(filter_empty_gt=False,
                                              min_size=1000))
    with pytest.raises(ValueError, match=r'\(target\).*empty'):
        PairedDataset(dataset=inner, fake_root=data['fake_root'],
                      domain='target')
    # all pairs skipped: an empty set too, even with 'skip'
    for stem in ('0000', '0001'):
        os.remove(osp.join(data['fake_root'], stem + '.png'))
    inner = paired_helpers['inner_cfg']('yolo', data['root'],
                                        with_label=False)
    with pytest.warns(UserWarning), \
            pytest.raises(ValueError, match=r'\(target\): every pair'):
        PairedDataset(dataset=inner, fake_root=data['fake_root'],
                      domain='target', invalid_policy='skip')


def test_source_without_boxes_is_always_an_error(tmp_path, pair_data,
                                                 paired_helpers,
                                                 mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2)
    for stem in ('0000', '0001'):
        open(osp.join(data['root'], 'labels', stem + '.txt'), 'w').close()
    with pytest.warns(UserWarning, match='empty'), \
            pytest.raises(ValueError, match=r'\(source\): no image .* box'):
        _paired(data, paired_helpers, invalid_policy='skip')


def test_paired_decode_check_names_damage_inside_files(tmp_path, pair_data,
                                                       paired_helpers,
                                                       mmssda_scope):
    """A real JPEG and a fake PNG damaged mid-file (header and end marker
    intact) are named when the set is built (in this process and in 2
    decoding processes); 'skip' drops their pairs; the header-only check
    does not see them."""
    from tests.fixtures.damaged_images import (damage_jpeg_middle,
                                               damage_png_crc, write_textured)
    data = pair_data(tmp_path / 'd', num=4)
    for stem in ('0001', '0002'):
        write_textured(osp.join(data['root'], 'images', stem + '.jpg'))
        write_textured(osp.join(data['fake_root'], stem + '.png'))
    damage_jpeg_middle(osp.join(data['root'], 'images', '0001.jpg'))
    damage_png_crc(osp.join(data['fake_root'], '0002.png'))
    with pytest.raises(ValueError) as err:
        _paired(data, paired_helpers)
    with pytest.raises(ValueError) as err_pool:
        _paired(data, paired_helpers, check_workers=2)
    msg = str(err.value)
    assert str(err_pool.value) == msg
    assert '2 of 4 pairs' in msg and msg.count('Damaged image') == 2
    assert 'images/0001.jpg' in msg and 'Corrupt JPEG data' in msg
    assert 'fake/0002.png' in msg and 'CRC error' in msg
    with pytest.warns(UserWarning, match='skipped 2 of 4'):
        ds = _paired(data, paired_helpers, invalid_policy='skip')
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(len(ds))] == ['0000.jpg', '0003.jpg']
    assert len(_paired(data, paired_helpers, check_images='header')) == 4
    with pytest.raises(ValueError, match='check_images'):
        _paired(data, paired_helpers, check_images='full')


def test_paired_orientation_mismatch_is_named(tmp_path, pair_data,
                                              paired_helpers, mmssda_scope):
    """A fake whose EXIF orientation differs from its real image's, and a
    fake stored rotated (width and height swapped), are named with both
    files, in both check modes."""
    import cv2

    from tests.fixtures.damaged_images import write_with_orientation
    data = pair_data(tmp_path / 'd', num=3)
    fake0 = osp.join(data['fake_root'], '0000.png')
    write_with_orientation(fake0, cv2.imread(fake0), 6)
    fake1 = osp.join(data['fake_root'], '0001.png')
    cv2.imwrite(fake1, cv2.rotate(cv2.imread(fake1),
                                  cv2.ROTATE_90_CLOCKWISE))
    for mode in ('decode', 'header'):
        with pytest.raises(ValueError) as err:
            _paired(data, paired_helpers, check_images=mode)
        msg = str(err.value)
        assert '2 of 3 pairs' in msg, mode
        assert 'different EXIF orientations (1 and 6)' in msg
        assert fake0 in msg and 'images/0000.jpg' in msg
        assert 'width and height swapped' in msg and fake1 in msg
