"""map_file_array: zero-copy, read-only, private and fd-free arrays."""
import ctypes
import os

import numpy as np
import pytest

from mmssda.utils import map_file_array, max_map_count


def _write(path, array, header=b''):
    with open(path, 'wb') as f:
        f.write(header)
        f.write(array.tobytes())
    return str(path)


def _open_fds():
    return len(os.listdir('/proc/self/fd'))


def test_maps_the_bytes_at_the_offset(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    path = _write(tmp_path / 'a.bin', data, header=b'x' * 13)
    array = map_file_array(path, 13, (2, 3, 4), np.int16)
    assert array.dtype == np.int16 and array.shape == (2, 3, 4)
    np.testing.assert_array_equal(array, data)


def test_reads_the_file_pages_without_a_copy(tmp_path):
    path = _write(tmp_path / 'a.bin', np.zeros(8192, np.uint8))
    array = map_file_array(path, 0, (8192, ), np.uint8)
    assert array.sum() == 0
    # the file changes under the mapping: the array shows it (its pages are
    # the file's pages, nothing was copied)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes([7] * 10), 5000)
    finally:
        os.close(fd)
    assert array[5000:5010].tolist() == [7] * 10 and array.sum() == 70


def test_read_only_and_private(tmp_path):
    data = np.full((64, 64), 3, np.uint8)
    path = _write(tmp_path / 'a.bin', data)
    array = map_file_array(path, 0, data.shape, np.uint8)
    with pytest.raises(ValueError, match='read-only'):
        array[0, 0] = 1
    # a C write that ignores the flag changes this process's copy only
    ctypes.memset(array.ctypes.data, 9, 16)
    assert array[0, :16].tolist() == [9] * 16
    with open(path, 'rb') as f:
        assert f.read() == data.tobytes()
    assert map_file_array(path, 0, data.shape, np.uint8)[0, 0] == 3


@pytest.mark.skipif(not os.path.isdir('/proc/self/fd'), reason='no procfs')
def test_holds_no_open_file(tmp_path):
    paths = [
        _write(tmp_path / f'{i}.bin', np.full(100, i, np.uint8))
        for i in range(50)
    ]
    before = _open_fds()
    arrays = [map_file_array(p, 0, (100, ), np.uint8) for p in paths]
    assert _open_fds() == before
    # the files can go: the mappings stay valid
    for p in paths:
        os.remove(p)
    assert [int(a[0]) for a in arrays] == list(range(50))


def test_short_file_is_not_mapped(tmp_path):
    path = _write(tmp_path / 'a.bin', np.zeros(10, np.uint8))
    assert map_file_array(path, 4, (10, ), np.uint8) is None
    assert map_file_array(path, 0, (0, 3), np.uint8) is None
    with pytest.raises(FileNotFoundError):
        map_file_array(str(tmp_path / 'missing'), 0, (1, ), np.uint8)


def test_max_map_count():
    count = max_map_count()
    if os.path.exists('/proc/sys/vm/max_map_count'):
        assert isinstance(count, int) and count > 0
    else:
        assert count is None
