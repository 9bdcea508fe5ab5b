"""The C library, through ctypes."""
import ctypes
import ctypes.util
import functools
from typing import Optional


@functools.lru_cache(maxsize=None)
def libc() -> Optional[ctypes.CDLL]:
    """The process's C library (``errno`` kept for ``ctypes.get_errno``),
    loaded once; None where it cannot be loaded."""
    try:
        return ctypes.CDLL(
            ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    except OSError:
        return None
