import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmssda.datasets import YOLOTxtDataset

CLASSES = ('square', 'disc')


def _write(root, name='0000', labels='0 0.5 0.5 0.25 0.5\n', size=(80, 40),
           ext='.jpg'):
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'labels'), exist_ok=True)
    img_path = osp.join(root, 'images', name + ext)
    cv2.imwrite(img_path, np.full((size[1], size[0], 3), 90, np.uint8))
    if labels is not None:
        with open(osp.join(root, 'labels', name + '.txt'), 'w') as f:
            f.write(labels)
    return img_path


def _build(root, **kwargs):
    return YOLOTxtDataset(
        data_root=str(root), data_prefix=dict(img='images/'),
        metainfo=dict(classes=CLASSES), **kwargs)


def test_load_boxes_in_pixels(tmp_path):
    _write(tmp_path, '0000', '0 0.5 0.5 0.25 0.5\n1 0.25 0.25 0.1 0.2\n')
    _write(tmp_path, '0001', '')
    with pytest.warns(UserWarning, match=r'1 label file.*0001\.txt'):
        ds = _build(tmp_path)
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_path'].endswith(osp.join('images', '0000.jpg'))
    assert (info['width'], info['height'], info['img_id']) == (80, 40, 1)
    np.testing.assert_allclose([i['bbox'] for i in info['instances']],
                               [[30, 10, 50, 30], [16, 6, 24, 14]])
    assert [i['bbox_label'] for i in info['instances']] == [0, 1]
    # an empty label file is valid data: an image without boxes
    assert ds.get_data_info(1)['instances'] == []


def test_unlabelled_needs_no_label_files(tmp_path):
    _write(tmp_path, '0000', labels=None)
    assert not os.listdir(tmp_path / 'labels')
    ds = _build(tmp_path, with_label=False)
    assert len(ds) == 1 and ds.get_data_info(0)['instances'] == []
    with pytest.raises(ValueError, match=r'0000\.txt.*not found'):
        _build(tmp_path)
    with pytest.warns(UserWarning, match='0000.txt'):
        assert _build(tmp_path, allow_missing_label=True)[0] is not None


def test_image_list_file(tmp_path):
    _write(tmp_path, '0000')
    _write(tmp_path, '0001', '1 0.5 0.5 0.5 0.5\n')
    (tmp_path / 'list.txt').write_text('./images/0001.jpg\n')
    ds = YOLOTxtDataset(data_root=str(tmp_path), ann_file='list.txt',
                        metainfo=dict(classes=CLASSES))
    assert len(ds) == 1
    assert ds.get_data_info(0)['instances'][0]['bbox_label'] == 1


@pytest.mark.parametrize('line, match', [
    ('2 0.5 0.5 0.1 0.1', r'Class id 2 out of range in .*0000\.txt, line 1'),
    ('-1 0.5 0.5 0.1 0.1', r'Class id -1 out of range in .*0000\.txt'),
    ('0 0.5 0.5 0.1', r'Malformed label in .*0000\.txt, line 1'),
    ('0 0.5 0.5 a 0.1', r'Malformed label in .*0000\.txt'),
    ('0.5 0.5 0.5 0.1 0.1', r'Malformed label in .*0000\.txt.*integer'),
    ('0 0.5 0.5 -0.1 0.1', r'Malformed label in .*0000\.txt.*negative'),
])
def test_bad_label_names_file(tmp_path, line, match):
    _write(tmp_path, '0000', line + '\n')
    with pytest.raises(ValueError, match=match):
        _build(tmp_path)


def test_box_outside_image_is_clipped_or_dropped(tmp_path):
    # x from 60 to 100 on an 80 px wide image: clipped to 80
    _write(tmp_path, '0000', '0 1.0 0.5 0.5 0.5\n0 0.5 0.5 0.0 0.2\n'
           '0 0.5 0.5 0.5 0.0\n')
    with pytest.warns(UserWarning) as record:
        ds = _build(tmp_path)
    text = ' '.join(str(w.message) for w in record)
    assert 'clipped' in text and '0000.txt:1' in text
    assert 'dropped' in text and '0000.txt:2' in text and '0000.txt:3' in text
    np.testing.assert_allclose(ds.get_data_info(0)['instances'][0]['bbox'],
                               [60, 10, 80, 30])
    assert len(ds.get_data_info(0)['instances']) == 1


def test_rounding_noise_is_not_reported(tmp_path, recwarn):
    _write(tmp_path, '0000', '0 0.5 0.5 1.0000001 1.0\n')
    ds = _build(tmp_path)
    assert not [w for w in recwarn if 'YOLOTxtDataset' in str(w.message)]
    np.testing.assert_allclose(ds.get_data_info(0)['instances'][0]['bbox'],
                               [0, 0, 80, 40])


def test_truncated_and_unreadable_images(tmp_path):
    img_path = _write(tmp_path, '0000')
    data = open(img_path, 'rb').read()
    with open(img_path, 'wb') as f:
        f.write(data[:-10])
    with pytest.raises(ValueError, match=r'Truncated image .*0000\.jpg'):
        _build(tmp_path)
    png_path = _write(tmp_path, '0000', ext='.png')
    os.remove(img_path)
    data = open(png_path, 'rb').read()
    with open(png_path, 'wb') as f:
        f.write(data[:-20])
    with pytest.raises(ValueError, match=r'Truncated image .*0000\.png'):
        _build(tmp_path)
    with open(png_path, 'wb') as f:
        f.write(b'not an image at all')
    with pytest.raises(ValueError, match=r'Unreadable image .*0000\.png'):
        _build(tmp_path)


def test_no_images_and_no_classes(tmp_path):
    os.makedirs(tmp_path / 'images')
    with pytest.raises(ValueError, match='no images found'):
        _build(tmp_path)
    _write(tmp_path)
    with pytest.raises(ValueError, match='metainfo=dict'):
        YOLOTxtDataset(data_root=str(tmp_path),
                       data_prefix=dict(img='images/'))


def test_batch_shapes_and_filter(tmp_path):
    _write(tmp_path, '0000')
    _write(tmp_path, '0001', '', size=(40, 80))
    with pytest.warns(UserWarning):
        ds = _build(
            tmp_path,
            test_mode=True,
            batch_shapes_cfg=dict(type='BatchShapePolicy', batch_size=2,
                                  img_size=64, size_divisor=32,
                                  extra_pad_ratio=0.5))
    assert len(ds) == 2 and 'batch_shape' in ds.get_data_info(0)
    with pytest.warns(UserWarning):
        ds = _build(tmp_path, filter_cfg=dict(filter_empty_gt=True))
    assert len(ds) == 1


def test_folder_links_count_each_image_once(tmp_path):
    """A link loop and a second link to an image do not add samples."""
    img = _write(tmp_path, '0000')
    _write(tmp_path, '0001')
    os.symlink(str(tmp_path / 'images'), str(tmp_path / 'images' / 'loop'))
    os.symlink(img, str(tmp_path / 'images' / '0002.jpg'))
    with pytest.warns(UserWarning, match=r'1 folder\(s\) and 1 file\(s\)'):
        ds = _build(tmp_path)
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(len(ds))] == ['0000.jpg', '0001.jpg']


@pytest.mark.parametrize('labels, match', [
    # pixel cx cy w h of an 80x40 image: would clip to the whole image
    ('0 40 20 80 40\n', r'0000\.txt, line 1 \(40 20 80 40\).*above 1 '
     r'\(1 of 1 lines\).*pixel coordinates'),
    ('0 0.5 0.5 0.2 0.2\n1 12 8 6 4\n', r'0000\.txt, line 2 .*pixel'),
    # corners x1 y1 x2 y2: line 2 as cx cy w h reaches 30% of its width
    # outside
    ('0 0.3 0.4 0.6 0.8\n1 0.1 0.2 0.5 0.9\n',
     r'0000\.txt, line 2 \(0.1 0.2 0.5 0.9\).*stick out of the image by '
     r'30% .*corner format'),
])
def test_label_in_another_convention_is_named(tmp_path, labels, match):
    _write(tmp_path, '0000', labels)
    with pytest.raises(ValueError, match=match):
        _build(tmp_path)
    _write(tmp_path, '0001')
    with pytest.warns(UserWarning, match=r'(?s)skipped 1 of 2.*0000\.txt'):
        ds = _build(tmp_path, invalid_policy='skip')
    assert [osp.basename(ds.get_data_info(i)['img_path'])
            for i in range(len(ds))] == ['0001.jpg']


def test_centre_format_at_the_border_is_not_corner_format(tmp_path):
    """Boxes touching the border, and one past it whose lines do not all
    read as corners, stay boxes (the latter clipped)."""
    _write(tmp_path, '0000', '0 0.1 0.5 0.2 0.4\n0 0.95 0.5 0.1 0.2\n'
           '1 0.5 0.5 1.0 1.0\n')
    ds = _build(tmp_path)
    np.testing.assert_allclose(
        [i['bbox'] for i in ds.get_data_info(0)['instances']],
        [[0, 12, 16, 28], [72, 16, 80, 24], [0, 0, 80, 40]])
    _write(tmp_path, '0000', '0 0.05 0.5 0.2 0.4\n0 0.6 0.5 0.2 0.4\n')
    with pytest.warns(UserWarning, match=r'clipped.*0000\.txt:1'):
        ds = _build(tmp_path)
    np.testing.assert_allclose(ds.get_data_info(0)['instances'][0]['bbox'],
                               [0, 12, 12, 28])
