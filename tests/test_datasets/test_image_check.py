"""Full-decode image checks: damage inside a file is an error naming it."""
import os
import os.path as osp

import pytest

from mmssda.datasets.image_check import (capture_c_stderr,
                                         check_dataset_images,
                                         decode_image_file, exif_orientation,
                                         image_loader_settings)
from mmssda.datasets.transforms import LoadPairedImageFromFile
from mmssda.datasets.yolo_txt_dataset import check_image_file
from tests.fixtures.damaged_images import (damage_jpeg_middle, damage_png_crc,
                                           truncate_half, write_textured,
                                           write_with_orientation)


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_jpeg_damaged_in_the_middle(tmp_path, backend):
    """The header check passes a JPEG broken mid-file; the decode check
    names it and quotes the decoder."""
    path = str(tmp_path / 'mid.jpg')
    write_textured(path)
    assert decode_image_file(path, imdecode_backend=backend).shape == (64, 80,
                                                                       3)
    damage_jpeg_middle(path)
    assert check_image_file(path) == (80, 64)
    with pytest.raises(ValueError, match=r'Damaged image .*mid\.jpg') as err:
        decode_image_file(path, imdecode_backend=backend)
    if backend == 'cv2':
        assert 'Corrupt JPEG data' in str(err.value)


@pytest.mark.parametrize('damage, needle', [(damage_png_crc, 'CRC error'),
                                            (truncate_half, '')])
def test_png_bad_crc_and_truncated(tmp_path, damage, needle):
    path = str(tmp_path / 'bad.png')
    write_textured(path)
    damage(path)
    with pytest.raises(ValueError, match=r'Damaged image .*bad\.png') as err:
        decode_image_file(path)
    assert needle in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        decode_image_file(str(tmp_path / 'nope.jpg'))


def test_capture_leaves_stderr_working(capfd):
    """C-level stderr is captured inside the block and restored after."""
    with capture_c_stderr() as captured:
        os.write(2, b'from C\n')
    assert captured == ['from C\n']
    os.write(2, b'after\n')
    assert capfd.readouterr().err == 'after\n'


def test_benign_png_metadata_warning_passes(tmp_path, monkeypatch):
    """libpng's warnings on metadata chunks do not fail the check; any
    other decoder line does."""
    import mmssda.datasets.image_check as image_check
    path = str(tmp_path / 'ok.png')
    write_textured(path)
    decode = image_check.mmcv.imfrombytes

    def noisy(line):
        def imfrombytes(*args, **kwargs):
            os.write(2, line)
            return decode(*args, **kwargs)
        return imfrombytes

    monkeypatch.setattr(image_check.mmcv, 'imfrombytes',
                        noisy(b'libpng warning: iCCP: known incorrect sRGB '
                              b'profile\n'))
    assert decode_image_file(path).shape == (64, 80, 3)
    monkeypatch.setattr(image_check.mmcv, 'imfrombytes',
                        noisy(b'libpng warning: IDAT: Too much image data\n'))
    with pytest.raises(ValueError, match='Too much image data'):
        decode_image_file(path)


def test_orientation_of_jpeg_and_png(tmp_path):
    img = write_textured(tmp_path / 'plain.png')
    assert exif_orientation(str(tmp_path / 'plain.png')) == 1
    for ext in ('.jpg', '.png'):
        path = str(tmp_path / f'turned{ext}')
        write_with_orientation(path, img, 6)
        assert exif_orientation(path) == 6
        # honoured by the decoder: width and height swapped
        assert decode_image_file(path).shape[:2] == (80, 64)


def test_loader_settings_from_pipeline():
    loader = LoadPairedImageFromFile(color_type='grayscale',
                                     imdecode_backend='pillow')
    mosaic = type('Mosaic', (), dict(pre_transform=[loader]))()
    assert image_loader_settings([mosaic]) == dict(
        color_type='grayscale', imdecode_backend='pillow', backend_args=None)
    assert image_loader_settings([])['imdecode_backend'] == 'cv2'


def test_check_dataset_images_lists_every_bad_file(tmp_path):
    paths = [str(tmp_path / f'{i}.jpg') for i in range(4)]
    for p in paths:
        write_textured(p)
    damage_jpeg_middle(paths[1])
    os.remove(paths[3])

    class Listing:
        pipeline = None

        def __len__(self):
            return len(paths)

        def get_data_info(self, i):
            return dict(img_path=paths[i])

    with pytest.raises(ValueError) as err:
        check_dataset_images(Listing(), 'val_dataloader.dataset')
    with pytest.raises(ValueError) as err_pool:
        check_dataset_images(Listing(), 'val_dataloader.dataset', workers=2)
    msg = str(err.value)
    assert str(err_pool.value) == msg
    assert msg.startswith('val_dataloader.dataset: 2 of 4 images')
    assert osp.basename(paths[1]) in msg and '3.jpg' in msg
    assert '0.jpg' not in msg and '2.jpg' not in msg
    os.remove(paths[1])
    paths[1:] = []
    assert check_dataset_images(Listing(), 'val') == 1
