"""Images checked the way training decodes them.

A header check (:func:`~mmssda.datasets.yolo_txt_dataset.check_image_file`)
finds unreadable and truncated files. A file damaged in the middle of its
compressed data still has a valid header and end marker: OpenCV decodes it
into a partly garbage image and libjpeg writes one line such as ``Corrupt
JPEG data: bad Huffman code`` to the process's standard error, from C,
without the file's name. :func:`decode_image_file` decodes a file through
``mmcv.imfrombytes`` with the pipeline's ``imdecode_backend`` and
``color_type`` (what :class:`mmcv.transforms.LoadImageFromFile` and
:class:`~mmssda.datasets.transforms.LoadPairedImageFromFile` do) while the
file descriptor 2 is redirected, and turns any message of the decoder into
a ``ValueError`` naming the file.

Only the libpng warnings about ancillary metadata chunks
(:data:`BENIGN_DECODER_MESSAGES`, e.g. ``libpng warning: iCCP: known
incorrect sRGB profile``) are let through: they leave every pixel as
written (OpenCV applies no colour profile or gamma).
"""
import multiprocessing
import os
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from PIL import Image

#: Decoder lines that do not change the decoded pixels: libpng warnings on
#: ancillary chunks (colour profile, gamma, text, time, physical size).
BENIGN_DECODER_MESSAGES = re.compile(
    r'^libpng warning: (iCCP|cHRM|sRGB|gAMA|tEXt|zTXt|iTXt|tIME|pHYs|eXIf|'
    r'Interlace handling should be turned on)')
#: Default decoding settings of ``LoadImageFromFile``.
DEFAULT_LOADER = dict(color_type='color', imdecode_backend='cv2',
                      backend_args=None)
_EXIF_ORIENTATION_TAG = 0x0112
_MAX_LISTED = 20
#: Sets with fewer images are checked in this process (no pool start-up).
MIN_IMAGES_PER_POOL = 64
#: Most processes a check starts by default.
MAX_CHECK_WORKERS = 8


def check_workers(num_images: int, workers: Optional[int] = None) -> int:
    """Processes to check ``num_images`` images with.

    Args:
        num_images (int): Images to check.
        workers (int, optional): Asked for; None: up to
            :data:`MAX_CHECK_WORKERS` (the CPU count) for
            :data:`MIN_IMAGES_PER_POOL` images or more, else 1.

    Returns:
        int: At least 1.
    """
    if workers is None:
        workers = 1 if num_images < MIN_IMAGES_PER_POOL else min(
            MAX_CHECK_WORKERS, os.cpu_count() or 1)
    return max(1, min(int(workers), num_images))


def parallel_map(fn: Callable, items: Sequence[tuple],
                 workers: int) -> list:
    """``[fn(*item) for item in items]``, in ``workers`` forked processes
    (each captures its own file descriptor 2) when ``workers > 1``.

    Args:
        fn (Callable): A module-level function.
        items (Sequence[tuple]): Its argument tuples.
        workers (int): Processes; 1 (or no ``fork`` on this platform): this
            process.

    Returns:
        list: The results, in the order of ``items``.
    """
    if workers <= 1 or len(items) < 2 or \
            'fork' not in multiprocessing.get_all_start_methods():
        return [fn(*item) for item in items]
    with ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context('fork')) as pool:
        return list(
            pool.map(fn, *zip(*items),
                     chunksize=max(1, len(items) // (workers * 4))))


# (pid, file): one capture file per process (a forked child gets its own,
# as the parent's shares its file offset with the child)
_capture_file: list = [None, None]


def _capture_target():
    """This process's empty capture file."""
    if _capture_file[0] != os.getpid():
        _capture_file[:] = [os.getpid(), tempfile.TemporaryFile()]
    tmp = _capture_file[1]
    tmp.seek(0)
    tmp.truncate()
    return tmp


@contextmanager
def capture_c_stderr() -> Iterator[List[str]]:
    """Redirect the file descriptor 2 (C libraries' ``stderr``) to a
    temporary file; on exit the captured text is appended to the yielded
    list.

    Yields:
        list[str]: Empty inside the block; holds the captured text after.
    """
    captured: List[str] = []
    sys.stderr.flush()
    tmp = _capture_target()
    saved = os.dup(2)
    os.dup2(tmp.fileno(), 2)
    try:
        yield captured
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        size = tmp.seek(0, os.SEEK_END)
        tmp.seek(0)
        captured.append(tmp.read(size).decode('utf-8', errors='replace'))


def _decoder_messages(text: str) -> List[str]:
    """The lines of ``text`` that report damage (not benign metadata)."""
    return [
        line.strip() for line in text.splitlines()
        if line.strip() and not BENIGN_DECODER_MESSAGES.match(line.strip())
    ]


def decode_image_file(path: str,
                      color_type: str = 'color',
                      imdecode_backend: str = 'cv2',
                      backend_args: Optional[dict] = None) -> np.ndarray:
    """Decode ``path`` fully as ``LoadImageFromFile`` would; fail on any
    decoder message.

    Args:
        path (str): Image file.
        color_type (str): ``LoadImageFromFile.color_type`` (``'color'``,
            ``'grayscale'``, ``'unchanged'``, ...). Defaults to ``'color'``.
        imdecode_backend (str): ``LoadImageFromFile.imdecode_backend``
            (``'cv2'``, ``'pillow'``, ``'turbojpeg'``, ``'tifffile'``).
            Defaults to ``'cv2'``.
        backend_args (dict, optional): ``LoadImageFromFile.backend_args``
            (file backend). Defaults to None.

    With another backend than ``'cv2'``, the file is also decoded by
    OpenCV, whose libjpeg reports damage that Pillow decodes silently.

    Returns:
        np.ndarray: The decoded image, (H, W) or (H, W, C).

    Raises:
        FileNotFoundError: The file cannot be read.
        ValueError: The decoder failed, returned nothing, or wrote a message
            (corrupt data, premature end, CRC error, ...); the message names
            the file and quotes the decoder.
    """
    try:
        content = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'Image file not found: {path}') from None
    error = None
    with capture_c_stderr() as captured:
        try:
            img = mmcv.imfrombytes(content, flag=color_type,
                                   backend=imdecode_backend)
            if imdecode_backend != 'cv2' and img is not None:
                # Pillow decodes some broken JPEG data silently; OpenCV's
                # libjpeg/libpng say so (on stderr)
                cv2.imdecode(np.frombuffer(content, np.uint8),
                             cv2.IMREAD_UNCHANGED)
        except Exception as e:  # decoders raise many types
            img, error = None, f'{type(e).__name__}: {e}'
    messages = _decoder_messages(captured[0])
    if error is not None:
        messages.append(error)
    if img is None or messages or not img.size:
        what = '; '.join(messages) or 'the decoder returned no image'
        raise ValueError(
            f'Damaged image {path}: decoding it (imdecode_backend='
            f'{imdecode_backend!r}, color_type={color_type!r}) reported: '
            f'{what}.')
    return img


def orientation_of(img: Image.Image) -> int:
    """The EXIF orientation tag of an opened image (1, upright, if absent).

    A PNG's ``eXIf`` chunk is read only where Pillow finds it without
    decoding the pixels (before the image data, where writers put it).

    Args:
        img (PIL.Image.Image): An image opened with ``Image.open``.

    Returns:
        int: 1-8 (5-8 swap width and height where the decoder honours it).
    """
    if img.format == 'PNG':
        raw = img.info.get('exif')
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
    else:
        exif = img.getexif()
    return int(exif.get(_EXIF_ORIENTATION_TAG) or 1)


def exif_orientation(path: str) -> int:
    """The EXIF orientation tag of an image file (see
    :func:`orientation_of`); 1 for a file Pillow cannot open (the image
    check reports it).

    Args:
        path (str): Image file.

    Returns:
        int: 1-8.
    """
    try:
        with Image.open(path) as img:
            return orientation_of(img)
    except Exception:  # PIL raises many types for corrupt headers
        return 1


def image_loader_settings(pipeline) -> dict:
    """The decoding settings of the first image loader of a pipeline.

    Args:
        pipeline (Compose | Sequence | None): A built pipeline (an
            ``mmengine.dataset.Compose`` or a list of transforms); a
            ``PairedMosaic``'s ``pre_transform`` is searched too.

    Returns:
        dict: ``color_type``, ``imdecode_backend`` and ``backend_args`` of
        the first :class:`mmcv.transforms.LoadImageFromFile` (or subclass),
        else :data:`DEFAULT_LOADER`.
    """
    transforms = getattr(pipeline, 'transforms', pipeline) or []
    for t in transforms:
        if isinstance(t, LoadImageFromFile):
            return dict(color_type=t.color_type,
                        imdecode_backend=t.imdecode_backend,
                        backend_args=t.backend_args)
        inner = getattr(t, 'pre_transform', None)
        if inner is not None:
            found = image_loader_settings(inner)
            if found is not DEFAULT_LOADER:
                return found
    return DEFAULT_LOADER


def _dataset_loader_settings(dataset) -> dict:
    """The loader settings of a dataset or of its first leaf dataset."""
    settings = image_loader_settings(getattr(dataset, 'pipeline', None))
    if settings is not DEFAULT_LOADER:
        return settings
    children = getattr(dataset, 'datasets', None)
    if children is None and hasattr(dataset, 'dataset'):
        children = [dataset.dataset]
    for child in children or []:
        settings = _dataset_loader_settings(child)
        if settings is not DEFAULT_LOADER:
            return settings
    return DEFAULT_LOADER


def _decode_problem(path: str, settings: dict) -> Optional[str]:
    """The message of :func:`decode_image_file` on ``path``, or None."""
    try:
        decode_image_file(path, **settings)
    except (OSError, ValueError) as e:
        return str(e)
    return None


def check_dataset_images(dataset,
                         what: str,
                         workers: Optional[int] = None) -> int:
    """Decode every image of a built dataset once; raise if any is damaged.

    Used on the validation and test sets before training starts (their
    images are otherwise first read at the first evaluation). Each
    ``img_path`` (and ``fake_img_path`` of a pair) is decoded with the
    settings of the dataset's image loader (:func:`image_loader_settings`).

    Args:
        dataset (BaseDataset): A built dataset (any mmengine/mmdet dataset
            or wrapper with ``get_data_info``).
        what (str): The dataset's name for the message, e.g.
            ``'val_dataloader.dataset'``.
        workers (int, optional): Decoding processes, see
            :func:`check_workers`. Defaults to None.

    Returns:
        int: The number of image files decoded.

    Raises:
        ValueError: Listing every missing or damaged file with the
            decoder's message.
    """
    settings = _dataset_loader_settings(dataset)
    seen = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        for key in ('img_path', 'fake_img_path'):
            path = info.get(key)
            if path is not None:
                seen.setdefault(path, None)
    found = parallel_map(_decode_problem,
                         [(path, settings) for path in seen],
                         check_workers(len(seen), workers))
    problems = [p for p in found if p is not None]
    if problems:
        more = '' if len(problems) <= _MAX_LISTED else \
            f'\n  ... and {len(problems) - _MAX_LISTED} more'
        raise ValueError(
            f'{what}: {len(problems)} of {len(seen)} images are missing or '
            'damaged (fix or remove them before training; the check decodes '
            'each image once as the pipeline loads it):' +
            ''.join(f'\n  - {p}' for p in problems[:_MAX_LISTED]) + more)
    return len(seen)


def pair_orientation_problem(real: str, fake: str,
                             real_size: Tuple[int, int],
                             fake_size: Tuple[int, int]) -> Optional[str]:
    """Why a real and a fake image would not decode the same way up.

    Args:
        real (str): Real image file.
        fake (str): Fake image file.
        real_size (tuple[int, int]): The real image's decoded (w, h).
        fake_size (tuple[int, int]): The fake image's decoded (w, h).

    Returns:
        str | None: A message naming both files, or None if their EXIF
        orientations agree and their sizes are not each other's transpose.
    """
    tags = exif_orientation(real), exif_orientation(fake)
    if tags[0] != tags[1]:
        return (f'Real image {real} and its fake {fake} have different EXIF '
                f'orientations ({tags[0]} and {tags[1]}): the decoder turns '
                'them differently, so boxes would not match one of them; '
                'save both with the same orientation (e.g. apply it to the '
                'pixels and drop the tag).')
    (rw, rh), (fw, fh) = real_size, fake_size
    if rw != rh and (rw, rh) == (fh, fw):
        return (f'Real image {real} ({rw}x{rh}) and its fake {fake} '
                f'({fw}x{fh}) are decoded with width and height swapped: '
                'one of them is rotated; save both the same way up.')
    return None
