import os
import os.path as osp
import warnings
from typing import List, Optional, Tuple

import numpy as np
from mmengine.fileio import list_from_file
from mmyolo.datasets.yolov5_coco import BatchShapePolicyDataset
from PIL import Image

from mmssda.registry import DATASETS
from mmssda.utils.file_scan import list_files
from .image_check import orientation_of

IMG_EXTENSIONS = ('.bmp', '.jpg', '.jpeg', '.png', '.tif', '.tiff', '.webp')
# EXIF orientations that swap width and height (cv2 honours them on decode).
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
_PNG_END = b'IEND\xaeB`\x82'
_JPEG_END = b'\xff\xd9'
# Coordinates this far (pixels) outside the image are rounding noise of the
# normalised format: clipped silently. Farther ones are clipped and reported.
_CLIP_TOLERANCE_PX = 1.0
# A normalised value above 1 + this (1% of the image) can only be a pixel
# coordinate; up to it, rounding or a sloppy border (clipped).
_NORMALISED_TOLERANCE = 0.01
# A box that, read as ``cx cy w h``, would stick out of the image by more
# than this fraction of its own width (height), in a file whose every line
# reads as corners ``x1 y1 x2 y2``, is taken for the corner format.
_CORNER_OVERHANG = 0.25
_MAX_LISTED = 5
INVALID_POLICIES = ('raise', 'skip')


def handle_invalid(owner: str,
                   problems: List[str],
                   total: int,
                   policy: str,
                   what: str,
                   num_invalid: Optional[int] = None) -> None:
    """Apply an ``invalid_policy`` to the problems found while loading.

    Args:
        owner (str): Name for the message (class and domain).
        problems (list[str]): One message per invalid sample, each naming
            its file(s).
        total (int): Number of samples checked.
        policy (str): ``'raise'`` or ``'skip'``.
        what (str): What was checked, for the message.
        num_invalid (int, optional): Number of invalid samples when a
            sample can have several problems. Defaults to
            ``len(problems)``.

    Raises:
        ValueError: With ``policy='raise'``, listing every problem.
    """
    if not problems:
        return
    listing = ''.join(f'\n  - {p}' for p in problems)
    num_invalid = len(problems) if num_invalid is None else num_invalid
    if policy == 'raise':
        raise ValueError(
            f'{owner}: {num_invalid} of {total} {what} are invalid '
            f'(fix them, or set invalid_policy=\'skip\' to drop them):'
            f'{listing}')
    warnings.warn(f'{owner}: skipped {num_invalid} of {total} invalid '
                  f'{what} (invalid_policy=\'skip\'):{listing}')


def check_image_file(path: str) -> Tuple[int, int]:
    """Check that an image can be decoded and is complete; return its size.

    Only the header is parsed (PIL, lazy), plus the last bytes of JPEG and PNG
    files to detect truncation, so the check is cheap enough to run on every
    image when a dataset is built.

    Args:
        path (str): Image file.

    Returns:
        tuple[int, int]: ``(width, height)`` as decoded by OpenCV, i.e. after
        the EXIF orientation is applied.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is not a readable image or is truncated. The
            message names the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Image file not found: {path}')
    try:
        with Image.open(path) as img:
            width, height = img.size
            fmt = img.format
            orientation = orientation_of(img)
    except Exception as e:  # PIL raises many types for corrupt headers
        raise ValueError(f'Unreadable image {path}: {e}') from e
    if width <= 0 or height <= 0:
        raise ValueError(f'Image {path} has an empty size {width}x{height}.')
    _check_not_truncated(path, fmt)
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return width, height


def _check_not_truncated(path: str, fmt: Optional[str]) -> None:
    """Raise ValueError naming ``path`` if a JPEG/PNG lacks its end marker."""
    if fmt not in ('JPEG', 'PNG'):
        return
    with open(path, 'rb') as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(f.tell() - 64, 0))
        tail = f.read()
    if fmt == 'JPEG':
        complete = _JPEG_END in tail.rstrip(b'\x00\r\n ')[-16:]
    else:
        complete = tail.endswith(_PNG_END)
    if not complete:
        raise ValueError(f'Truncated image {path}: the {fmt} end marker is '
                         'missing (incomplete download or copy?).')


def img_path_to_label_path(img_path: str) -> str:
    """Map ``.../images/a/b.jpg`` to ``.../labels/a/b.txt`` (YOLOv5 layout).

    The last ``images`` folder of the path is replaced.

    Args:
        img_path (str): Image file.

    Returns:
        str: The label file path.
    """
    sep_img = os.sep + 'images' + os.sep
    sep_lbl = os.sep + 'labels' + os.sep
    norm = osp.normpath(img_path)
    if sep_img not in norm:
        raise ValueError(
            f'Cannot derive the label file of {img_path}: YOLO txt labels '
            'are looked up by replacing an `images/` folder in the image '
            'path with `labels/`, and this path has no `images/` folder. '
            'Set `with_label=False` for unlabelled sets.')
    head, tail = norm.rsplit(sep_img, 1)
    return osp.splitext(head + sep_lbl + tail)[0] + '.txt'


@DATASETS.register_module()
class YOLOTxtDataset(BatchShapePolicyDataset):
    """Detection dataset in YOLO txt format (the layout SSDA-YOLO uses).

    Images live in a folder (searched recursively, folder links followed,
    each file once however many links reach it:
    :func:`mmssda.utils.file_scan.list_files`) or are listed in a ``.txt``
    file (``ann_file``, one path a line; relative lines are relative to the
    list file's folder, as in YOLOv5). Each image ``.../images/x.jpg`` has a
    label file ``.../labels/x.txt`` with one ``cls cx cy w h`` line per box,
    coordinates normalised to [0, 1]. Class names come from ``metainfo``.

    Validation on build (errors and warnings name the file). Invalid
    images, handled by ``invalid_policy`` (all of them are collected first,
    so one error lists every problem):

    - missing, unreadable or truncated image;
    - missing label file (unless ``allow_missing_label``), unreadable label
      file (permissions, binary content, a folder);
    - malformed line (not 5 numbers, non-integer class, negative size),
      named with its line number;
    - class id outside ``metainfo['classes']``;
    - a label file in another convention, named with the first line that
      shows it: a value above 1 (pixel coordinates, not normalised), or,
      in a file whose every line reads as corners ``x1 y1 x2 y2``
      (``x1 < x2``, ``y1 < y2``), a box that as ``cx cy w h`` would stick
      out of the image by more than a quarter of its size (corner format).
      Such a box is not clipped into one that covers most of the image.

    Fixed and reported (never invalid):

    - box outside the image: clipped, counted and reported in one
      ``UserWarning``; boxes without area after clipping are dropped;
    - empty label file: valid (no boxes), reported in one ``UserWarning``.

    Boxes are stored as pixel ``[x1, y1, x2, y2]`` with
    ``x1 = (cx - w / 2) * W``, ``x2 = (cx + w / 2) * W`` (continuous
    coordinates, the same as COCO ``[x, y, x + w, y + h]``). ``img_id`` is the
    1-based position in the sorted image list (the ids
    ``tools/dataset_converters/yolo_to_coco.py`` writes).

    Args:
        with_label (bool): Read label files. ``False`` for unlabelled target
            sets, which then need no ``labels/`` folder at all. Defaults to
            True.
        allow_missing_label (bool): Treat an image without label file as an
            image without boxes instead of raising. Defaults to False.
        invalid_policy (str): ``'raise'``: raise one ``ValueError`` listing
            every invalid image before training starts; ``'skip'``: drop the
            invalid images with one ``UserWarning`` giving their count and
            listing them. Defaults to ``'raise'``.
        **kwargs: :class:`mmyolo.datasets.BatchShapePolicyDataset` arguments
            (``data_root``, ``ann_file`` (optional list file),
            ``data_prefix=dict(img=<image folder>)``, ``metainfo``,
            ``filter_cfg``, ``batch_shapes_cfg``, ``pipeline``, ...).

    Example:
        >>> dataset = dict(
        ...     type='YOLOTxtDataset',
        ...     data_root='data/cityscapes_yolo/',
        ...     data_prefix=dict(img='images/train/'),
        ...     metainfo=dict(classes=('person', 'rider', 'car', 'truck',
        ...                            'bus', 'train', 'motorcycle',
        ...                            'bicycle')),
        ...     with_label=True,
        ...     invalid_policy='raise')
    """

    METAINFO = dict(classes=None)

    def __init__(self,
                 *args,
                 with_label: bool = True,
                 allow_missing_label: bool = False,
                 invalid_policy: str = 'raise',
                 **kwargs) -> None:
        if invalid_policy not in INVALID_POLICIES:
            raise ValueError(
                f'YOLOTxtDataset: invalid_policy must be one of '
                f'{INVALID_POLICIES}, got {invalid_policy!r}.')
        self.invalid_policy = invalid_policy
        self.with_label = with_label
        self.allow_missing_label = allow_missing_label
        kwargs.setdefault('data_prefix', dict(img=''))
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Scan the images, check them and parse their label files.

        Returns:
            list[dict]: One data info per image with ``img_path``, ``img_id``,
            ``width``, ``height`` and ``instances`` (``bbox`` in pixels
            xyxy, ``bbox_label``, ``ignore_flag``).
        """
        classes = self._metainfo.get('classes')
        if not classes:
            raise ValueError(
                'YOLOTxtDataset needs the class names: set '
                '`metainfo=dict(classes=(...))` in the dataset config.')
        img_paths = self._list_images()
        stats = dict(clipped=[], dropped=[], empty=[])
        data_list, problems = [], []
        for i, img_path in enumerate(img_paths):
            try:
                width, height = check_image_file(img_path)
                instances = self._load_instances(
                    img_path, width, height,
                    stats) if self.with_label else []
            except (OSError, ValueError) as e:
                problems.append(str(e))
                continue
            data_list.append(
                dict(
                    img_path=img_path,
                    img_id=i + 1,
                    width=width,
                    height=height,
                    instances=instances))
        self._report(stats)
        handle_invalid(
            'YOLOTxtDataset', problems, len(img_paths), self.invalid_policy,
            f'images of {self.data_prefix.get("img", "")!r}'
            f'{" listed in " + repr(self.ann_file) if self.ann_file else ""}')
        if not data_list:
            raise ValueError('YOLOTxtDataset: every image was invalid and '
                             'skipped; no data left.')
        return data_list

    def _list_images(self) -> List[str]:
        """Return the sorted image paths of ``ann_file`` or the folder."""
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(
                    f'YOLOTxtDataset: image list file (ann_file) not found: '
                    f'{self.ann_file}')
            list_dir = osp.dirname(self.ann_file)
            paths = [
                p if osp.isabs(p) else osp.normpath(osp.join(list_dir, p))
                for p in list_from_file(self.ann_file) if p.strip()
            ]
            source = f'ann_file={self.ann_file!r}'
        else:
            img_dir = self.data_prefix.get('img', '')
            if not osp.isdir(img_dir):
                raise FileNotFoundError(
                    f'YOLOTxtDataset: image folder data_prefix.img '
                    f'(joined with data_root) not found: {img_dir!r}')
            paths = [
                osp.normpath(p) for p in list_files(
                    img_dir, IMG_EXTENSIONS, owner='YOLOTxtDataset')
            ]
            source = f'data_prefix.img={img_dir!r}'
        if not paths:
            raise ValueError(f'YOLOTxtDataset: no images found in {source} '
                             f'(extensions {IMG_EXTENSIONS}).')
        return sorted(paths)

    def _load_instances(self, img_path: str, width: int, height: int,
                        stats: dict) -> List[dict]:
        """Parse the label file of one image into pixel-space instances."""
        label_path = img_path_to_label_path(img_path)
        if not osp.isfile(label_path):
            if self.allow_missing_label:
                stats['empty'].append(label_path)
                return []
            raise ValueError(
                f'Label file {label_path} of image {img_path} not found. '
                'Use `with_label=False` for unlabelled sets or '
                '`allow_missing_label=True` for images without boxes.')
        rows = self._parse_label_file(label_path)
        if not rows:
            stats['empty'].append(label_path)
            return []
        self._check_convention(label_path, rows, width, height)
        instances = []
        for lineno, label, box in rows:
            bbox, clipped = self._to_pixel_box(box, width, height)
            if clipped:
                stats['clipped'].append(f'{label_path}:{lineno}')
            if bbox[2] <= bbox[0] or bbox[3] <= bbox[1]:
                stats['dropped'].append(f'{label_path}:{lineno}')
                continue
            instances.append(
                dict(bbox=bbox, bbox_label=label, ignore_flag=0))
        return instances

    def _parse_label_file(self,
                          label_path: str) -> List[Tuple[int, int, list]]:
        """Read ``(line number, class id, [cx, cy, w, h])`` rows."""
        num_classes = len(self._metainfo['classes'])
        try:
            with open(label_path) as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f'Unreadable label file {label_path}: '
                             f'{type(e).__name__}: {e}') from e
        rows = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f'{label_path}, line {lineno} ({line.strip()!r})'
            try:
                values = [float(v) for v in line.split()]
            except ValueError:
                raise ValueError(f'Malformed label in {where}: expected '
                                 '`cls cx cy w h` numbers.') from None
            if len(values) != 5 or not np.all(np.isfinite(values)):
                raise ValueError(f'Malformed label in {where}: expected 5 '
                                 f'finite numbers `cls cx cy w h`, got '
                                 f'{len(values)} values.')
            cls_id, box = values[0], values[1:]
            if cls_id != int(cls_id):
                raise ValueError(f'Malformed label in {where}: the class id '
                                 'must be an integer.')
            if not 0 <= cls_id < num_classes:
                raise ValueError(
                    f'Class id {int(cls_id)} out of range in {where}: the '
                    f'dataset has {num_classes} classes '
                    f'{tuple(self._metainfo["classes"])}.')
            if box[2] < 0 or box[3] < 0:
                raise ValueError(f'Malformed label in {where}: negative '
                                 'box width or height.')
            rows.append((lineno, int(cls_id), box))
        return rows

    @staticmethod
    def _check_convention(label_path: str, rows: List[Tuple[int, int, list]],
                          width: int, height: int) -> None:
        """Raise ValueError naming the file and line if its values can only
        be pixel coordinates or corners (see the class docstring)."""
        fmt = 'cls cx cy w h'
        big = [(n, box) for n, _, box in rows
               if max(box) > 1 + _NORMALISED_TOLERANCE]
        if big:
            lineno, box = big[0]
            raise ValueError(
                f'Label file {label_path}, line {lineno} '
                f'({" ".join(f"{v:g}" for v in box)}): a value above 1 '
                f'({len(big)} of {len(rows)} lines): these look like pixel '
                f'coordinates. YOLO labels are `{fmt}` normalised by the '
                f'image size ({width}x{height}): divide x and w by the '
                'width, y and h by the height.')
        if not all(box[0] < box[2] and box[1] < box[3] for _, _, box in rows):
            return
        for lineno, _, box in rows:
            cx, cy, w, h = box
            overhang = max(w / 2 - cx, cx + w / 2 - 1) / w, \
                max(h / 2 - cy, cy + h / 2 - 1) / h
            overhang_px = max(overhang[0] * w * width,
                              overhang[1] * h * height)
            if max(overhang) > _CORNER_OVERHANG and \
                    overhang_px > _CLIP_TOLERANCE_PX:
                raise ValueError(
                    f'Label file {label_path}, line {lineno} '
                    f'({" ".join(f"{v:g}" for v in box)}): read as `{fmt}` '
                    f'this box would stick out of the image by '
                    f'{max(overhang):.0%} of its size, and every line of the '
                    'file reads as corners `cls x1 y1 x2 y2` (x1 < x2, '
                    'y1 < y2): this looks like the corner format. Convert '
                    f'to `{fmt}` (cx = (x1 + x2) / 2, w = x2 - x1, same for '
                    'y).')

    @staticmethod
    def _to_pixel_box(box: list, width: int,
                      height: int) -> Tuple[List[float], bool]:
        """Normalised cxcywh -> clipped pixel xyxy, and whether it was
        outside the image by more than the rounding tolerance."""
        cx, cy, w, h = box
        raw = np.array([(cx - w / 2) * width, (cy - h / 2) * height,
                        (cx + w / 2) * width, (cy + h / 2) * height])
        limits = np.array([width, height, width, height], dtype=np.float64)
        clipped = np.clip(raw, 0, limits)
        outside = bool(np.abs(raw - clipped).max() > _CLIP_TOLERANCE_PX)
        return clipped.tolist(), outside

    @staticmethod
    def _report(stats: dict) -> None:
        """Warn once about clipped/dropped boxes and empty label files."""
        messages = dict(
            clipped='box(es) outside the image were clipped',
            dropped='box(es) without area after clipping were dropped',
            empty='label file(s) are empty or missing (images without '
            'boxes)')
        for key, what in messages.items():
            items = stats[key]
            if items:
                warnings.warn(f'YOLOTxtDataset: {len(items)} {what}: '
                              f'{items[:_MAX_LISTED]}'
                              f'{" ..." if len(items) > _MAX_LISTED else ""}')

    def filter_data(self) -> List[dict]:
        """Filter images without boxes (``filter_cfg.filter_empty_gt``) or
        smaller than ``filter_cfg.min_size``; nothing in test mode.

        Returns:
            list[dict]: The kept data infos.
        """
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        return [
            info for info in self.data_list
            if not (filter_empty_gt and not info['instances'])
            and min(info['width'], info['height']) >= min_size
        ]
