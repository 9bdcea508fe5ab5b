"""glibc malloc settings for the data-loading processes."""
import ctypes

from .libc import libc

# mallopt parameters of glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_large_buffers(mmap_threshold: int = 64 << 20,
                       trim_threshold: int = 128 << 20) -> bool:
    """Let this process's malloc reuse freed image-sized buffers.

    By default glibc serves large allocations with fresh ``mmap`` pages and
    gives freed memory at the top of the heap back to the system, so a data
    pipeline that allocates a new mosaic canvas (1280x1280x3: 4.9 MB), warp
    output and HSV buffers for every sample page-faults on each of them: in
    the cached 640 px SSDA pipeline thousands of faults per batch and about
    a tenth of its time (docs/performance.md). Allocations below
    ``mmap_threshold`` then come from the heap, and up to
    ``trim_threshold`` bytes of freed heap are kept for the next sample.

    Meant for dataloader workers (see :class:`SSDAIterBasedTrainLoop`),
    whose allocations repeat per sample; not for the training process.

    Args:
        mmap_threshold (int): Bytes from which malloc uses ``mmap``.
            Defaults to 64 MiB.
        trim_threshold (int): Free bytes at the top of the heap that malloc
            keeps. Defaults to 128 MiB.

    Returns:
        bool: Whether both were set (False where the C library has no
        ``mallopt``, e.g. macOS or musl).
    """
    mallopt = getattr(libc(), 'mallopt', None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))
