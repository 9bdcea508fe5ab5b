"""Arrays backed by a file mapping that holds no open file."""
import ctypes
import mmap
import os
from typing import Optional, Tuple

import numpy as np

from .libc import libc

_MAP_FAILED = ctypes.c_void_p(-1).value


def _libc_mmap():
    """libc's ``mmap`` through ctypes (None where there is none)."""
    if not all(
            hasattr(mmap, name)
            for name in ('MAP_PRIVATE', 'PROT_READ', 'PROT_WRITE')):
        return None
    func = getattr(libc(), 'mmap', None)
    if func is None:
        return None
    func.restype = ctypes.c_void_p
    func.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
        ctypes.c_int, ctypes.c_int64
    ]
    return func


_MMAP = _libc_mmap()


def max_map_count() -> Optional[int]:
    """The kernel's limit of mappings per process (None if unknown)."""
    try:
        with open('/proc/sys/vm/max_map_count') as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def map_file_array(path: str, offset: int, shape: Tuple[int, ...],
                   dtype) -> Optional[np.ndarray]:
    """A read-only array of the bytes of ``path`` from ``offset``.

    The file is mapped copy-on-write (``MAP_PRIVATE``) and the descriptor
    closed right away, so holding thousands of these arrays holds no open
    file (Python's ``mmap`` and :class:`numpy.memmap` keep one descriptor
    per mapping). Reading the array copies nothing: its pages are the
    file's pages in the page cache, shared by every process that maps the
    file (on a tmpfs such as ``/dev/shm``: shared memory). The array is not
    writeable, and a write by C code that ignores the flag stays private to
    this process; the file never changes through it. The mapping lives as
    long as the process.

    Args:
        path (str): The file; it must not shrink while mapped.
        offset (int): Byte offset of the array's first element.
        shape (tuple[int]): Shape of the array (C order).
        dtype: Its numpy dtype.

    Returns:
        np.ndarray | None: The array, or None where libc's ``mmap`` is not
        available, the array is empty or the file is shorter than it.
    """
    if _MMAP is None:
        return None
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    length = offset + nbytes
    if nbytes == 0:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size < length:
            return None
        addr = _MMAP(None, length, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE, fd, 0)
    finally:
        os.close(fd)
    if addr is None or addr == _MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, f'mmap of {path} failed: {os.strerror(err)}')
    buffer = (ctypes.c_ubyte * length).from_address(addr)
    array = np.frombuffer(
        buffer, dtype=dtype, count=nbytes // dtype.itemsize,
        offset=offset).reshape(shape)
    array.flags.writeable = False
    return array
