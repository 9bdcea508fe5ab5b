"""Checkpoint loading that never unpickles code.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and refuses
any global it does not know. MMEngine 0.10.7 calls it without the argument,
so ``load_from`` and ``--resume`` fail on the types MMEngine itself writes:
the message hub's :class:`HistoryBuffer` (whose statistics methods pickle as
``getattr(HistoryBuffer, 'mean')``), numpy scalars and arrays. Rather than
turning the check off, :func:`allow_mmengine_checkpoint_globals` allow-lists
exactly those, and maps ``builtins.getattr`` to a version that resolves only
HistoryBuffer's own statistics methods.

MMEngine's loader for ``http(s)://`` goes through torch hub's
``load_state_dict_from_url``, which unpickles with ``weights_only=False``,
and its other loaders call ``torch.load`` without the argument, which the
environment variable ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns back into a
full unpickle. :func:`install_safe_checkpoint_loaders`
therefore registers, for every scheme MMEngine's
:class:`~mmengine.runner.CheckpointLoader` knows (a local path,
``http(s)://``, ``open-mmlab://``, ``openmmlab://``, ``mmcls://``,
``torchvision://``, ``modelzoo://``, ``pavi://``, ``s3://``,
``petrel://``), a loader that always calls ``torch.load(...,
weights_only=True)`` with that allow-list. ``load_from``, ``resume``,
:func:`mmengine.runner.load_checkpoint` and our tools all load through them.
A download goes to torch hub's checkpoint folder
(``<torch.hub.get_dir()>/checkpoints``) as before, and a file whose name
carries a hash prefix (``<name>-<8 to 64 hex digits>.<ext>``, torch hub's and
OpenMMLab's convention) is checked against the SHA-256 of its content,
whether it was just downloaded or already there.

Importing this module installs the loaders (:mod:`mmssda.utils`,
:mod:`mmssda.datasets`, :mod:`mmssda.engine` and :mod:`mmssda.apis` import
it); :func:`~mmssda.utils.register_all_modules` installs them again, in
case another package re-registered a scheme since.
"""
import hashlib
import io
import logging
import os
import os.path as osp
import pickle
import re
import tempfile
from typing import IO, Optional, Union
from urllib.parse import urlparse

import numpy as np
import torch
import torch.hub
from mmengine.logging import HistoryBuffer

#: Names that carry a hash prefix: ``<anything>-<8 to 64 hex>.<ext>``.
HASH_PREFIX_REGEX = re.compile(r'-([0-9a-f]{8,64})\.[A-Za-z0-9]+$')
# (realpath, size, mtime_ns, prefix) of files whose hash matched here
_VERIFIED = set()


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs a global outside the allow-list to unpickle.

    Args:
        filename (str): The checkpoint as the user gave it (path or URL).
        refused (str): The refused global (e.g. ``'posix.system'``).
        detail (str): torch's own reason.
        path (str, optional): The local file, when there is one (used in
            the conversion command of the message).
    """

    def __init__(self,
                 filename: str,
                 refused: str,
                 detail: str = '',
                 path: Optional[str] = None) -> None:
        self.filename = filename
        self.refused = refused
        self.detail = detail
        self.path = path
        src = repr(path) if path else "'<file>'"
        super().__init__(
            f'Refused to load the checkpoint {filename}: unpickling it needs '
            f'{refused}, which is not on mmssda\'s allow-list (tensors, '
            'MMEngine\'s HistoryBuffer, numpy arrays and scalars), so '
            'loading it could run code. Nothing was loaded. If you trust '
            'this file, convert it once to plain tensors, e.g.\n'
            f'  python -c "import torch; c = torch.load({src}, '
            'weights_only=False); torch.save({\'state_dict\': '
            'c[\'state_dict\']}, \'converted.pth\')"\n'
            'and load converted.pth instead.' +
            (f'\n(torch: {detail})' if detail else ''))

    def __reduce__(self):
        return self.__class__, (self.filename, self.refused, self.detail,
                                self.path)


class CheckpointHashError(RuntimeError):
    """A checkpoint's content does not match the hash in its name."""


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    if obj is HistoryBuffer and name in HistoryBuffer._statistics_methods:
        return getattr(HistoryBuffer, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'mmssda refuses getattr({obj!r}, {name!r}) while loading a '
        'checkpoint: only HistoryBuffer statistics methods are allowed.')


def _numpy_globals() -> list:
    """numpy's pickle entry points and dtype classes, for numpy 1.x and 2.x."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = {
        type(np.dtype(t))
        for t in np.sctypeDict.values() if isinstance(t, type)
    }
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list the non-tensor objects MMEngine writes into checkpoints.

    Idempotent. A no-op on torch < 2.5, which has no (named) allow-list and,
    before 2.6, does not default to ``weights_only=True``.
    """
    serialization = torch.serialization
    if not hasattr(serialization, 'get_safe_globals'):
        return
    # Registering HistoryBuffer also fills its class-level method table,
    # which the restricted getattr consults.
    HistoryBuffer()
    serialization.add_safe_globals([
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        *_numpy_globals(),
    ])


def _refused_global(message: str) -> str:
    """The global torch's weights-only unpickler refused, from its message."""
    for pattern in (r'GLOBAL ([\w.]+)', r'(getattr\([^)]*\))',
                    r'[Uu]nsupported (?:global|operand)[: ]+([^\s]+)'):
        match = re.search(pattern, message)
        if match:
            return match.group(1)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1] if lines else 'an object that is not allow-listed'


def _reason(message: str) -> str:
    """torch's message without its general advice (which suggests
    ``weights_only=False``)."""
    advice = ('Weights only load failed', 'Check the documentation',
              'Please file an issue')
    lines = [
        line.strip() for line in message.splitlines()
        if line.strip() and not line.strip().startswith(advice)
    ]
    return ' '.join(lines)


def safe_load(file: Union[str, IO[bytes]],
              map_location=None,
              name: Optional[str] = None):
    """``torch.load(file, weights_only=True)`` with MMEngine's types allowed.

    Args:
        file (str | file-like): A checkpoint path or an open binary file.
        map_location: As for :func:`torch.load`.
        name (str, optional): How the error names the checkpoint (the path,
            URL or scheme path the user gave); defaults to ``file`` when
            that is a path.

    Returns:
        The loaded object (usually a dict of tensors and metadata).

    Raises:
        UnsafeCheckpointError: Unpickling needs a global outside the
            allow-list; the message names the file and the global.

    Example:
        >>> ckpt = safe_load('work_dirs/x/iter_100.pth', map_location='cpu')
    """
    allow_mmengine_checkpoint_globals()
    path = str(file) if isinstance(file, (str, os.PathLike)) else None
    if name is None:
        name = path or repr(file)
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            str(name), _refused_global(str(e)), _reason(str(e)),
            path) from None


def hash_prefix(filename: str) -> Optional[str]:
    """The SHA-256 prefix a file's name carries, or None.

    Args:
        filename (str): A path or URL; only its last component counts.

    Returns:
        str | None: The 8 to 64 lower-case hex digits after the last ``-``
        (``yolov5_s-..._084700-86e02187.pth`` -> ``'86e02187'``).
    """
    match = HASH_PREFIX_REGEX.search(osp.basename(urlparse(filename).path))
    return match.group(1) if match else None


def sha256_of(path: str) -> str:
    """Hex SHA-256 of a file's content (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def check_hash(path: str, expected: str, source: Optional[str] = None) -> None:
    """Check that ``path``'s SHA-256 starts with ``expected``.

    Like torch hub's ``check_hash``. A file checked once in this process is
    not hashed again while its size and modification time stay the same.
    The file is never modified or deleted.

    Args:
        path (str): The file.
        expected (str): Hex prefix of its SHA-256.
        source (str, optional): The URL it came from, for the message.

    Raises:
        CheckpointHashError: The message names the file, the expected and
            the actual hash and what to do.
    """
    stat = os.stat(path)
    key = (osp.realpath(path), stat.st_size, stat.st_mtime_ns, expected)
    if key in _VERIFIED:
        return
    actual = sha256_of(path)
    if not actual.startswith(expected):
        origin = f' (from {source})' if source else ''
        raise CheckpointHashError(
            f'The checkpoint {path}{origin} does not match the hash in its '
            f'name: expected a SHA-256 starting with {expected}, got '
            f'{actual[:len(expected)]} (full: {actual}). The file was left '
            'as it is. It is incomplete, damaged or another file: if you '
            'did not put it there yourself, delete it to download it '
            'afresh; to load a file of your own under this name, give '
            'its local path instead (--cfg-options load_from=/path/to/'
            'file.pth).')
    _VERIFIED.add(key)


def hub_checkpoint_path(url: str, model_dir: Optional[str] = None) -> str:
    """Where a URL's file is kept: ``<model_dir>/<file name of the URL>``.

    Args:
        url (str): ``http(s)://`` URL of a checkpoint.
        model_dir (str, optional): Defaults to torch hub's checkpoint folder
            (``<torch.hub.get_dir()>/checkpoints``, ``$TORCH_HOME/hub/
            checkpoints``), where MMEngine and torch hub keep it.
    """
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir, osp.basename(urlparse(url).path))


def download_checkpoint(url: str,
                        model_dir: Optional[str] = None,
                        progress: bool = True) -> str:
    """The local file of a checkpoint URL, downloaded if missing.

    A missing file is downloaded with :func:`torch.hub.download_url_to_file`
    to a temporary name in the same folder, checked against the hash prefix
    of its name (if it has one) and only then renamed into place; a failed
    download or check removes only that temporary file. A file already
    there is checked against its name's hash prefix and never replaced.

    Args:
        url (str): ``http(s)://`` URL.
        model_dir (str, optional): See :func:`hub_checkpoint_path`.
        progress (bool): Show torch hub's progress bar.

    Returns:
        str: The local path.

    Raises:
        CheckpointHashError: The content does not match the name's hash.
        Exception: Whatever the download raised (``URLError``, ...).
    """
    path = hub_checkpoint_path(url, model_dir)
    expected = hash_prefix(path)
    if osp.exists(path):
        if expected is not None:
            check_hash(path, expected, url)
        return path
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix='.' + osp.basename(path) + '.', suffix='.partial')
    os.close(fd)
    try:
        torch.hub.download_url_to_file(url, tmp, progress=progress)
        if expected is not None:
            check_hash(tmp, expected, url)
        os.replace(tmp, path)
    finally:
        if osp.lexists(tmp):
            os.remove(tmp)
    return path


# ---------------------------------------------------------------- loaders
# The same scheme functions as MMEngine's (same names, so that its log line
# "Loads checkpoint by <name> backend" reads the same), each ending in
# safe_load.


def load_from_local(filename: str, map_location=None):
    """Load a local checkpoint file with :func:`safe_load`."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_load(filename, map_location)


def load_from_http(filename: str,
                   map_location=None,
                   model_dir: Optional[str] = None,
                   progress: bool = os.isatty(0)):
    """Download a checkpoint URL (see :func:`download_checkpoint`) and load
    it with :func:`safe_load`.

    In distributed runs rank 0 downloads first; the other ranks then find
    the file (or download it where their file system is not rank 0's). A
    failed download or hash check on rank 0 still reaches the barrier, so
    the other ranks do not wait for it forever.
    """
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        try:
            path = download_checkpoint(filename, model_dir, progress)
        except BaseException:
            if world_size > 1:
                torch.distributed.barrier()
            raise
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            path = download_checkpoint(filename, model_dir, progress)
    return safe_load(path, map_location, name=f'{path} (from {filename})')


def load_from_openmmlab(filename: str, map_location=None):
    """``open-mmlab://<name>``: MMEngine's model zoo name, then a URL
    (:func:`load_from_http`) or a file in MMEngine's home."""
    from mmengine.logging import print_log
    from mmengine.runner.checkpoint import (_get_mmengine_home,
                                            get_deprecated_model_names,
                                            get_external_models)
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') \
        else 'openmmlab://'
    model_name = filename[len(prefix):]
    deprecated = get_deprecated_model_names()
    if model_name in deprecated:
        print_log(
            f'{prefix}{model_name} is deprecated in favor of '
            f'{prefix}{deprecated[model_name]}',
            logger='current',
            level=logging.WARNING)
        model_name = deprecated[model_name]
    model_urls = get_external_models()
    if model_name not in model_urls:
        raise KeyError(f'{filename}: no model named {model_name!r} in '
                       "MMEngine's open-mmlab model list.")
    url = model_urls[model_name]
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    path = osp.join(_get_mmengine_home(), url)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    return safe_load(path, map_location, name=f'{path} (from {filename})')


def load_from_mmcls(filename: str, map_location=None):
    """``mmcls://<name>``: the backbone weights of an mmcls model."""
    from mmengine.runner.checkpoint import (_process_mmcls_checkpoint,
                                            get_mmcls_models)
    model_name = filename[len('mmcls://'):]
    model_urls = get_mmcls_models()
    if model_name not in model_urls:
        raise KeyError(f'{filename}: no model named {model_name!r} in '
                       "MMEngine's mmcls model list.")
    checkpoint = load_from_http(
        model_urls[model_name], map_location=map_location)
    return _process_mmcls_checkpoint(checkpoint)


def load_from_torchvision(filename: str, map_location=None):
    """``torchvision://<name>`` (or the older ``modelzoo://<name>``)."""
    from mmengine.runner.checkpoint import get_torchvision_models
    prefix = 'modelzoo://' if filename.startswith('modelzoo://') \
        else 'torchvision://'
    model_name = filename[len(prefix):]
    model_urls = get_torchvision_models()
    if model_name not in model_urls:
        raise KeyError(f'{filename}: no model named {model_name!r} in '
                       "torchvision's model list.")
    return load_from_http(model_urls[model_name], map_location=map_location)


def load_from_pavi(filename: str, map_location=None):
    """``pavi://<model path>``: downloaded from pavi's model cloud into a
    temporary folder."""
    try:
        from pavi import modelcloud
    except ImportError as e:
        raise ImportError(
            'Please install pavi to load checkpoint from modelcloud.') from e
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp_dir:
        path = osp.join(tmp_dir, model.name)
        model.download(path)
        return safe_load(path, map_location, name=filename)


def load_from_ceph(filename: str, map_location=None, backend='petrel'):
    """``s3://`` and ``petrel://`` paths, read through MMEngine's file
    backend."""
    from mmengine.fileio import get_file_backend
    file_backend = get_file_backend(
        filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return safe_load(buffer, map_location, name=filename)


#: Scheme prefixes (as MMEngine registers them) and their safe loaders.
SAFE_SCHEMES = (
    ('', load_from_local),
    (('http://', 'https://'), load_from_http),
    (('open-mmlab://', 'openmmlab://'), load_from_openmmlab),
    ('mmcls://', load_from_mmcls),
    (('modelzoo://', 'torchvision://'), load_from_torchvision),
    ('pavi://', load_from_pavi),
    ((r'(\S+\:)?s3://', r'(\S+\:)?petrel://'), load_from_ceph),
)


def install_safe_checkpoint_loaders() -> None:
    """Register the safe loaders for every scheme MMEngine knows.

    Idempotent (``register_scheme(..., force=True)``). A scheme another
    package registers afterwards is not covered until this runs again
    (:func:`~mmssda.utils.register_all_modules` calls it).
    """
    from mmengine.runner import CheckpointLoader
    allow_mmengine_checkpoint_globals()
    for prefixes, loader in SAFE_SCHEMES:
        CheckpointLoader.register_scheme(prefixes, loader, force=True)


install_safe_checkpoint_loaders()
