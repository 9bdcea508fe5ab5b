import atexit
import hashlib
import json
import os
import os.path as osp
import re
import shutil
import stat
import tempfile
from typing import Callable, Dict, Iterable, Optional, Tuple

import mmcv
import numpy as np

from mmssda.utils import map_file_array, max_map_count

#: Where ``mode='ram'`` keeps its per-run folder (a tmpfs: shared memory).
RAM_ROOT = '/dev/shm'
#: Where ``mode='disk'`` keeps its entries unless told otherwise.
DEFAULT_DISK_DIR = osp.join('~', '.cache', 'mmssda', 'image_cache')
#: The RAM cache may use at most this share of the memory available.
RAM_FRACTION = 0.8
_RUN_DIR_PREFIX = 'mmssda-image-cache-'
# names of what the cache writes: per-source folders, entries, and the
# temporary files of entries being written (tempfile.mkstemp's names)
_FOLDER_NAME = re.compile(r'[0-9a-f]{32}$')
_FILE_NAME = re.compile(r'([0-9a-f]{32}\.(npy|json)|tmp\w+\.tmp)$')
# opening an entry never follows a symbolic link
_O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_GIB = 1024**3
# per process: the RAM folder of this run (inherited by forked workers)
_RAM_DIRS: Dict[str, str] = {}
# per process: entries mapped so far, and how many may be (half the
# kernel's per-process limit of mappings, leaving the rest to everything
# else)
_MAPPED = dict(count=0, budget=(max_map_count() or 0) // 2)


class ImageCache:
    """Images decoded once and kept at training scale, shared by processes.

    Each image is stored resized so that it fits ``scale`` with its aspect
    ratio kept (ratio ``r = min(scale_w / w, scale_h / h)``, size
    ``(int(w * r), int(h * r))``: exactly the resize
    :class:`mmyolo.datasets.transforms.Mosaic` applies to every mosaic cell,
    and the long side at ``img_scale`` as YOLOv5's ``--cache`` does).
    Images already smaller than ``scale`` are kept as they are (the mosaic
    enlarges them the same way either way), and so is an image whose
    resized size the mosaic would resize again by a pixel (float rounding).
    Whoever loads an image first (the main process or any dataloader
    worker) decodes, resizes and stores it; everyone else reads it.

    A process maps each stored file the first time it reads it
    (:func:`~mmssda.utils.map_file_array`: no open file kept,
    at most half the kernel's ``vm.max_map_count`` files per process, the
    rest read into arrays of their own), and every later read of that image
    is the same array: no copy, no system call. Images come out read-only,
    as stored and as built: a transform that modifies the image in place
    must copy it first (numpy raises ``assignment destination is
    read-only``); the stored files never change.

    One entry is a ``.npy`` file (the image, uint8, as decoded) and a small
    ``.json`` beside it (the original height and width and the ratio), in a
    folder named by a hash of the source path. The entry's own name hashes
    the source file's size and modification time, the scale, the
    interpolation, the decode settings and, for a fake image, the size of
    its real image, so a changed source or setting is a miss; the stale
    entry of that path is deleted when the new one is written.

    Modes:

    - ``'ram'``: the folder lives on a tmpfs (``/dev/shm`` unless
      ``cache_dir`` names another), private to this run: a fresh folder
      from :func:`tempfile.mkdtemp` (``mmssda-image-cache-<pid>-<random>``,
      mode 0700, owned by this user), so no other user can read, redirect
      or pre-fill it. Its pages are shared memory, read by every dataloader
      worker (forked: they inherit the folder) without a copy per process;
      each distributed rank has a folder of its own. At exit the process
      that created it removes the entries it wrote and then the folder;
      anything else found in it stays (and so does the folder). The
      entries of a folder whose run died (same user, mode 0700, not a
      link) are removed the same way when a new run starts.
    - ``'disk'``: the folder is ``cache_dir`` (default
      ``~/.cache/mmssda/image_cache``), kept across runs, created with
      mode 0700. It must not be a symbolic link, must belong to this user
      and must not be writable by others (an error says so). Nothing else
      is ever written or deleted: entries only go to that dedicated folder.

    In both modes an entry folder or file that is a symbolic link is never
    followed: a linked entry file is a miss (and replaced by a real file
    when the entry is written), a linked entry folder is an error naming
    it.

    Args:
        mode (str): ``'ram'`` or ``'disk'``.
        scale (tuple[int, int]): ``(width, height)`` to fit, the training
            ``img_scale``.
        cache_dir (str, optional): See the modes.
        interpolation (str): :func:`mmcv.imresize` interpolation of the
            downscale. ``'bilinear'`` (default) is the resize the mosaic
            would apply to the full image, so a cached batch is identical
            to an uncached one; ``'area'`` (YOLOv5's) avoids aliasing but
            then differs from the uncached images by the interpolation.
        key (str): Decode settings that change the stored pixels (added to
            every entry's name).
    """

    MODES = ('ram', 'disk')

    def __init__(self,
                 mode: str,
                 scale: Tuple[int, int],
                 cache_dir: Optional[str] = None,
                 interpolation: str = 'bilinear',
                 key: str = '') -> None:
        if mode not in self.MODES:
            raise ValueError(f'ImageCache: `mode` must be one of '
                             f'{self.MODES}, got {mode!r}.')
        if len(tuple(scale)) != 2 or min(scale) <= 0:
            raise ValueError('ImageCache: `scale` must be (width, height) '
                             f'with positive sides, got {scale!r}.')
        self.mode = mode
        self.scale = (int(scale[0]), int(scale[1]))
        self.interpolation = interpolation
        self.key = key
        if mode == 'ram':
            self.cache_dir = _ram_run_dir(cache_dir or RAM_ROOT)
        else:
            self.cache_dir = _disk_dir(cache_dir or DEFAULT_DISK_DIR)
        # bytes the data sets checked so far in this process need
        self._needed: Dict[int, int] = {}
        # entries read before in this process: .npy layout and meta, so a
        # hit is one read into a fresh array
        self._known: Dict[str, dict] = {}

    # ------------------------------------------------------------- shapes
    def cached_shape(self, height: int, width: int) -> Tuple[int, int, float]:
        """Stored ``(height, width)`` of an image and the ratio applied.

        Args:
            height (int): Height of the decoded image.
            width (int): Width of the decoded image.

        Returns:
            tuple: ``(height, width, ratio)``; ratio 1.0 when stored as is.
        """
        scale_w, scale_h = self.scale
        ratio = min(scale_h / height, scale_w / width)
        if ratio >= 1:
            return height, width, 1.0
        w, h = int(width * ratio), int(height * ratio)
        # the mosaic resizes the cached image by min(scale / size): it must
        # be the identity, or the two resizes would differ from one
        again = min(scale_h / h, scale_w / w) if min(h, w) > 0 else 0
        if h == 0 or w == 0 or (int(w * again), int(h * again)) != (w, h):
            return height, width, 1.0
        return h, w, ratio

    def cached_nbytes(self, height: int, width: int, channels: int) -> int:
        """Bytes one stored uint8 image of this size takes."""
        h, w, _ = self.cached_shape(height, width)
        return h * w * channels

    # ------------------------------------------------------------- access
    def load_real(self, path: str, decode: Callable[[str], np.ndarray]
                  ) -> Optional[Tuple[np.ndarray, Tuple[int, int], float]]:
        """The stored real image of ``path`` (decoded on a miss).

        Args:
            path (str): Image file (a local file).
            decode (callable): ``decode(path)`` -> uint8 image or None.

        Returns:
            tuple | None: ``(image, (ori_h, ori_w), ratio)``, the image a
            fresh array; None when ``decode`` returns None.
        """

        def build():
            img = decode(path)
            if img is None:
                return None
            h, w, ratio = self.cached_shape(*img.shape[:2])
            return self._resize(img, h, w), img.shape[:2], ratio

        return self._get(path, '', build)

    def load_fake(self, path: str, real_shape: Tuple[int, int],
                  decode: Callable[[str], np.ndarray],
                  match: Callable[[np.ndarray], np.ndarray]
                  ) -> Optional[np.ndarray]:
        """The stored fake image of ``path``, at its real image's scale.

        Args:
            path (str): Fake image file.
            real_shape (tuple[int, int]): ``(h, w)`` of the decoded real
                image.
            decode (callable): ``decode(path)`` -> uint8 image or None.
            match (callable): Resizes a decoded fake to ``real_shape`` (as
                without the cache).

        Returns:
            np.ndarray | None: The fake at the real image's stored shape.
        """

        def build():
            img = decode(path)
            if img is None:
                return None
            img = match(img)
            h, w, ratio = self.cached_shape(*real_shape)
            return self._resize(img, h, w), tuple(real_shape), ratio

        entry = self._get(path, f'real={tuple(real_shape)}', build)
        return None if entry is None else entry[0]

    def _resize(self, img: np.ndarray, h: int, w: int) -> np.ndarray:
        if img.shape[:2] == (h, w):
            return img
        return mmcv.imresize(img, (w, h), interpolation=self.interpolation)

    def _get(self, path: str, extra: str, build: Callable):
        """Read the entry of ``path`` or build and store it."""
        folder, name = self._entry_name(path, extra)
        npy = osp.join(folder, name + '.npy')
        known = self._known.get(npy)
        if known is None:
            known = self._open_entry(npy, osp.join(folder, name + '.json'))
        if known is not None:
            img = known['array']
            if img is None:
                img = _read_raw(npy, known)
            if img is not None:
                return img, known['ori_shape'], known['ratio']
        built = build()
        if built is None:
            return None
        img, ori_shape, ratio = built
        img = np.ascontiguousarray(img)
        self._store(folder, name, img,
                    dict(ori_shape=list(ori_shape), ratio=ratio, path=path))
        # read-only like a hit, so that the pipeline sees the same array
        # flags on every epoch
        img.flags.writeable = False
        return img, tuple(ori_shape), ratio

    def _open_entry(self, npy: str, meta_file: str) -> Optional[dict]:
        """Layout and meta of a stored entry, its array mapped when the
        process may map one more file (None: no complete entry)."""
        folder = osp.dirname(npy)
        if not osp.lexists(folder):
            return None
        # a linked entry folder is refused, not read through
        _check_owned_dir(folder, 'the cache entry folder')
        try:
            with _open_nofollow(npy) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    header = np.lib.format.read_array_header_1_0(f)
                else:
                    header = np.lib.format.read_array_header_2_0(f)
                offset = f.tell()
            with _open_nofollow(meta_file) as f:
                meta = json.loads(f.read().decode())
            shape, fortran_order, dtype = header
            if fortran_order or dtype.hasobject:
                return None
            known = dict(
                shape=shape,
                dtype=dtype,
                offset=offset,
                ori_shape=tuple(meta['ori_shape']),
                ratio=meta['ratio'],
                array=_map_entry(npy, offset, shape, dtype))
        except (FileNotFoundError, ValueError, KeyError, OSError):
            return None
        self._known[npy] = known
        return known

    def _entry_name(self, path: str, extra: str) -> Tuple[str, str]:
        """The entry's folder (per source path) and name (per content)."""
        path = osp.abspath(path)
        try:
            stat = os.stat(path)
        except OSError as e:
            raise FileNotFoundError(
                f'ImageCache: cannot stat {path}: the image cache needs '
                f'local image files ({e}).') from e
        folder = osp.join(self.cache_dir, _sha1(path)[:32])
        name = _sha1(f'{stat.st_size}|{stat.st_mtime_ns}|{self.scale}|'
                     f'{self.interpolation}|{self.key}|{extra}')[:32]
        return folder, name

    @staticmethod
    def _store(folder: str, name: str, img: np.ndarray, meta: dict) -> None:
        """Write an entry atomically (meta first: the .npy commits it) and
        delete the stale entries of the same source path."""
        _private_dir(folder, 'the cache entry folder')
        for suffix, write in (
            ('.json', lambda f: f.write(json.dumps(meta).encode())),
            ('.npy', lambda f: np.save(f, img, allow_pickle=False)),
        ):
            fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
            try:
                with os.fdopen(fd, 'wb') as f:
                    write(f)
                os.replace(tmp, osp.join(folder, name + suffix))
            except BaseException:
                if osp.exists(tmp):
                    os.remove(tmp)
                raise
        for other in os.listdir(folder):
            # only stale entries: the cache's own names, not this entry's
            if _FILE_NAME.match(other) and not other.startswith(name) \
                    and not other.endswith('.tmp'):
                try:
                    os.remove(osp.join(folder, other))
                except FileNotFoundError:
                    pass

    # ----------------------------------------------------------- capacity
    def used_bytes(self) -> int:
        """Bytes of the entries in the cache folder."""
        total = 0
        for folder in _scandir(self.cache_dir):
            if folder.is_dir(follow_symlinks=False):
                for entry in _scandir(folder.path):
                    if entry.name.endswith('.npy') and \
                            entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        return total

    def has_checked(self, dataset_id: int) -> bool:
        """Whether :meth:`check_fits` ran for this data set here."""
        return dataset_id in self._needed

    def check_fits(self, dataset_id: int, shapes: Iterable[Tuple[int, int]],
                   channels: int, owner: str) -> None:
        """Raise if the images of one more data set would not fit.

        The estimate is the stored size of every real image and of its fake
        (the same shape), added to what the data sets checked before in
        this process need; against it stands the free memory (``'ram'``:
        ``RAM_FRACTION`` of ``MemAvailable`` and the free tmpfs space) or
        disk space (``'disk'``), plus what the cache folder already holds.

        Args:
            dataset_id (int): Identifies the data set (checked once).
            shapes (Iterable[tuple[int, int]]): ``(h, w)`` of its real
                images as decoded.
            channels (int): Channels per decoded image.
            owner (str): Names the setting in the error (e.g. the
                transform).
        """
        if dataset_id in self._needed:
            return
        shapes = list(shapes)
        self._needed[dataset_id] = 2 * sum(
            self.cached_nbytes(h, w, channels) for h, w in shapes)
        needed = sum(self._needed.values())
        used = self.used_bytes()
        free = shutil.disk_usage(self.cache_dir).free + used
        if self.mode == 'ram':
            mem = _mem_available()
            if mem is not None:
                free = min(free, int(RAM_FRACTION * mem) + used)
        if needed <= free:
            return
        where = (f'{RAM_FRACTION:.0%} of the available RAM and the free '
                 f'space of the tmpfs {osp.dirname(self.cache_dir)}'
                 if self.mode == 'ram' else f'the free disk space of '
                 f'{self.cache_dir}')
        hint = ("cache='disk' (files in `cache_dir`, read through the page "
                'cache) or cache=None' if self.mode == 'ram' else
                '`cache_dir` on a larger disk, or cache=None')
        raise MemoryError(
            f'{owner}: cache={self.mode!r} would need '
            f'{needed / _GIB:.2f} GiB for the real and fake images '
            f'({2 * len(shapes)} in the data set just checked) at '
            f'cache_scale={self.scale}, but {where} allows '
            f'{free / _GIB:.2f} GiB (the cache already holds '
            f'{used / _GIB:.2f} GiB). Set {hint} on {owner} in the train '
            'pipeline, or a smaller `cache_scale`.')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(mode={self.mode!r}, '
                f'scale={self.scale}, cache_dir={self.cache_dir!r}, '
                f'interpolation={self.interpolation!r})')


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _read_raw(npy: str, known: dict) -> Optional[np.ndarray]:
    """The array of a known ``.npy`` entry, read into a fresh read-only
    array (None if it is gone)."""
    img = np.empty(known['shape'], known['dtype'])
    view = memoryview(img).cast('B')
    try:
        with _open_nofollow(npy, buffering=0) as f:
            f.seek(known['offset'])
            if f.readinto(view) != len(view):
                return None
    except OSError:  # gone, or replaced by a link
        return None
    img.flags.writeable = False
    return img


def _map_entry(npy: str, offset: int, shape, dtype) -> Optional[np.ndarray]:
    """The entry's array mapped from its file, while this process has
    mappings to spare (None: read it instead)."""
    if _MAPPED['count'] >= _MAPPED['budget']:
        return None
    array = map_file_array(npy, offset, shape, dtype)
    if array is not None:
        _MAPPED['count'] += 1
    return array


def _scandir(path: str):
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []


def _mem_available() -> Optional[int]:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (None elsewhere)."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_nofollow(path: str, buffering: int = -1):
    """``open(path, 'rb')`` that fails (``OSError``) on a symbolic link."""
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f'{path} is not a regular file')
        return os.fdopen(fd, 'rb', buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


def _check_owned_dir(path: str, what: str) -> os.stat_result:
    """Raise unless ``path`` is a real folder (not a link) of this user
    that no one else can write to (for an entry folder the message names
    its cache folder to ``chmod``)."""
    chmod = f'chmod 700 {path}'
    if what == 'the cache entry folder':
        chmod = f'chmod -R go-w {osp.dirname(path)}'
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise PermissionError(
            f'ImageCache: {what} {path} is a symbolic link; the image cache '
            'never follows links (another user could redirect it). Remove '
            'the link, or set `cache_dir` to a real folder.')
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(
            f'ImageCache: {what} {path} is not a folder; set `cache_dir` '
            'to a folder of the image cache.')
    if st.st_uid != os.getuid():
        raise PermissionError(
            f'ImageCache: {what} {path} belongs to user id {st.st_uid}, not '
            f'to this user ({os.getuid()}); set `cache_dir` to a folder of '
            'your own.')
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(
            f'ImageCache: {what} {path} can be written by other users (mode '
            f'{stat.S_IMODE(st.st_mode):o}), who could pre-fill the cache; '
            f'make it private ({chmod}) or set another `cache_dir`.')
    return st


def _private_dir(path: str, what: str = 'the cache folder') -> None:
    """Create ``path`` with mode 0700 if missing, then check it (see
    :func:`_check_owned_dir`)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    _check_owned_dir(path, what)


def _disk_dir(cache_dir: str) -> str:
    """The absolute disk cache folder, created 0700 (its parents with the
    default mode) and checked."""
    path = osp.abspath(osp.expanduser(cache_dir))
    if not osp.lexists(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    _private_dir(path, "cache='disk' folder")
    return path


def _remove_entries(path: str) -> None:
    """Remove what the cache writes from a run folder: the files named as
    entries are named (regular files only, links themselves, never their
    targets), then the emptied entry folders and the folder itself. Any
    other file or folder stays, and with it the folders holding it."""
    for folder in _scandir(path):
        if not (_FOLDER_NAME.match(folder.name)
                and folder.is_dir(follow_symlinks=False)):
            continue
        for entry in _scandir(folder.path):
            if _FILE_NAME.match(entry.name) and (
                    entry.is_symlink()
                    or entry.is_file(follow_symlinks=False)):
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    pass
        try:
            os.rmdir(folder.path)
        except OSError:  # holds something the cache did not write
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _ram_run_dir(root: str) -> str:
    """This run's private folder under ``root``, created once per process
    tree with :func:`tempfile.mkdtemp` (mode 0700).

    Forked workers inherit the main process's folder. The creating process
    removes its entries and the folder at exit; the entries of folders
    whose creator is gone are removed here (see :func:`_remove_entries`).
    """
    root = osp.abspath(root)
    if root in _RAM_DIRS:
        return _RAM_DIRS[root]
    if not osp.isdir(root):
        raise FileNotFoundError(
            f"ImageCache: cache='ram' keeps images in the tmpfs {root}, "
            "which does not exist here; set `cache_dir` to a tmpfs folder "
            "or use cache='disk'.")
    pattern = re.compile(re.escape(_RUN_DIR_PREFIX) + r'(\d+)-\w+$')
    for entry in _scandir(root):
        match = pattern.match(entry.name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        try:
            _check_owned_dir(entry.path, 'run folder')
        except OSError:  # a link, someone else's, not private: not ours
            continue
        if stat.S_IMODE(os.lstat(entry.path).st_mode) == 0o700:
            _remove_entries(entry.path)
    pid = os.getpid()
    path = tempfile.mkdtemp(prefix=f'{_RUN_DIR_PREFIX}{pid}-', dir=root)
    _check_owned_dir(path, 'run folder')
    _RAM_DIRS[root] = path

    def remove():
        if os.getpid() == pid:
            _remove_entries(path)

    atexit.register(remove)
    return path
