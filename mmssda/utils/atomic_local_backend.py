import os
import os.path as osp
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.utils import mkdir_or_exist


class AtomicLocalBackend(LocalBackend):
    """A local file backend whose writes are all-or-nothing.

    :meth:`put` writes the bytes to a hidden temporary file in the target's
    directory (``.<name>.<pid>.part``), flushes and ``fsync``s it, renames it
    over the target with :func:`os.replace` and ``fsync``s the directory. A
    process killed at any instant leaves either the old file or the complete
    new one under the target name (at worst a stale ``.part`` file beside
    it); the rename is atomic on POSIX file systems. Reading, listing and
    removing are :class:`mmengine.fileio.LocalBackend`'s.

    Registered in MMEngine's file backends as ``'mmssda_atomic_local'``, so
    anything that takes ``backend_args`` (``runner.save_checkpoint``,
    ``mmengine.fileio.put``) writes through it with
    ``backend_args=dict(backend='mmssda_atomic_local')``.

    Example:
        >>> backend = AtomicLocalBackend()
        >>> backend.put(b'weights', '/tmp/work_dir/iter_10.pth')
        >>> backend.put_text('iter_10.pth', '/tmp/work_dir/last_checkpoint')
    """

    #: Name in MMEngine's file backend registry.
    name = 'mmssda_atomic_local'
    #: Suffix of the temporary files (see :meth:`temp_path`).
    temp_suffix = '.part'

    @classmethod
    def temp_path(cls, filepath: Union[str, Path]) -> str:
        """The hidden temporary name :meth:`put` writes ``filepath`` to."""
        directory, name = osp.split(str(filepath))
        return osp.join(directory, f'.{name}.{os.getpid()}{cls.temp_suffix}')

    @classmethod
    def is_temp_file(cls, name: str) -> bool:
        """Whether a file name is one of :meth:`temp_path`'s."""
        return name.startswith('.') and name.endswith(cls.temp_suffix)

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        """Write ``obj`` to ``filepath`` atomically (see the class).

        The directory is created if missing; on an error the temporary file
        is removed and the target is left as it was.
        """
        filepath = str(filepath)
        directory = osp.dirname(osp.abspath(filepath))
        mkdir_or_exist(directory)
        temp = self.temp_path(filepath)
        try:
            self._write_synced(obj, temp)
            os.replace(temp, filepath)
        except BaseException:
            if osp.lexists(temp):
                os.remove(temp)
            raise
        self._fsync_dir(directory)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        """Write the text ``obj`` to ``filepath`` atomically."""
        self.put(obj.encode(encoding), filepath)

    @staticmethod
    def _write_synced(obj: bytes, filepath: str) -> None:
        """Write ``obj`` to a new ``filepath`` and flush it to the disk."""
        with open(filepath, 'wb') as f:
            f.write(obj)
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def _fsync_dir(directory: str) -> None:
        """Flush a directory's entries (the rename) to the disk."""
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:  # a platform without directory handles
            return
        try:
            os.fsync(fd)
        except OSError:  # file systems that cannot sync a directory
            pass
        finally:
            os.close(fd)


register_backend(AtomicLocalBackend.name, AtomicLocalBackend)
