import copy
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import (BaseDataset, ClassBalancedDataset, Compose,
                              ConcatDataset, RepeatDataset)

from mmssda.registry import DATASETS, TRANSFORMS
from .image_check import (check_workers, decode_image_file,
                          image_loader_settings, pair_orientation_problem,
                          parallel_map)
from .yolo_txt_dataset import (INVALID_POLICIES, YOLOTxtDataset,
                               check_image_file, handle_invalid)

DOMAINS = ('source', 'target')
_MAX_LISTED = 5
#: Metainfo keys that describe an inner dataset's files, not its labels:
#: mmdet's ``VOCDataset`` records the VOC year (``'VOC2007'``,
#: ``'VOC2012'`` or None) in ``dataset_type``. A domain may join several
#: years (VOC 07+12) or none (Clipart in the VOC layout), so these keys are
#: left out of :attr:`PairedDataset.metainfo` and not compared when inner
#: datasets are concatenated.
FORMAT_META_KEYS = ('dataset_type', )
_DATASET_WRAPPERS = (ConcatDataset, RepeatDataset, ClassBalancedDataset)
#: ``check_images`` values: a full decode, the header and end marker only,
#: no check.
CHECK_IMAGES = ('decode', 'header', False)


def _describe_cfg(cfg) -> str:
    """Short description of a dataset or its config for messages."""
    keys = ('type', 'data_root', 'ann_file', 'data_prefix')
    if not isinstance(cfg, dict):
        desc = {k: getattr(cfg, k) for k in keys[1:] if getattr(cfg, k, '')}
        return f'{type(cfg).__name__}{desc or ""}'
    desc = str({k: cfg[k] for k in keys if k in cfg})
    children = cfg.get('datasets', cfg.get('dataset'))
    if isinstance(children, dict):
        children = [children]
    if isinstance(children, (list, tuple)):
        desc += ' of [' + ', '.join(_describe_cfg(c) for c in children) + ']'
    return desc


def _decoded_size(path: str, loader: dict) -> Tuple[int, int]:
    """``(width, height)`` of the fully decoded image; a file that fails
    gets the header check's message where it has one (unreadable,
    truncated), else the decoder's."""
    try:
        img = decode_image_file(path, **loader)
    except ValueError:
        check_image_file(path)
        raise
    return img.shape[1], img.shape[0]


def _pair_problems(real: str, fake: Optional[str], mode: str,
                   loader: dict) -> List[str]:
    """The problems of one pair's images (``check_images`` ``mode``) and
    orientation; empty if none."""
    problems, sizes = [], []
    for path in (real, ) if fake is None else (real, fake):
        try:
            sizes.append(
                _decoded_size(path, loader) if mode ==
                'decode' else check_image_file(path))
        except (OSError, ValueError) as e:
            problems.append(str(e))
    if len(sizes) == 2:
        problem = pair_orientation_problem(real, fake, *sizes)
        if problem is not None:
            problems.append(problem)
    return problems


def _leaf_datasets(dataset) -> Iterator:
    """The dataset, or the datasets a wrapper holds (recursively)."""
    children = getattr(dataset, 'datasets', None)
    if children is None and isinstance(dataset, _DATASET_WRAPPERS):
        children = [dataset.dataset]
    if children is None:
        yield dataset
        return
    for child in children:
        yield from _leaf_datasets(child)


def _returns_copies(dataset) -> bool:
    """Whether ``dataset.get_data_info`` returns a new object each call:
    mmengine's ``BaseDataset`` does, and its wrappers pass it on."""
    if isinstance(dataset, ConcatDataset):
        return all(_returns_copies(d) for d in dataset.datasets)
    if isinstance(dataset, (RepeatDataset, ClassBalancedDataset)):
        return _returns_copies(dataset.dataset)
    return (isinstance(dataset, BaseDataset) and
            type(dataset).get_data_info is BaseDataset.get_data_info)


@DATASETS.register_module()
class PairedDataset:
    """A detection dataset whose samples are (real, fake) image pairs.

    Wraps any detection dataset (``YOLOv5CocoDataset``, ``mmdet.VOCDataset``,
    ``YOLOTxtDataset``, ...), built with an empty pipeline, and pairs every
    real image with its domain-translated fake: the fake has the same path
    relative to ``fake_root`` as the real image relative to ``real_root``,
    with any of ``fake_suffixes`` as extension (real ``a/b.jpg`` -> fake
    ``a/b.png``). Every data info gains ``fake_img_path`` (str, None if
    made online) and ``domain`` (``'source'`` | ``'target'``). The pipeline
    runs with ``results['dataset'] = self`` so that ``PairedMosaic`` draws
    partners from the same pairs.

    Without fake files (``fake_root=None``), ``fake_pipeline`` makes each
    fake from its real image when it is loaded: ``fake_img_path`` is None
    and ``LoadPairedImageFromFile`` calls :meth:`make_fake` right after
    reading the real image, for the sample and for each mosaic partner, so
    every paired transform after it sees ``fake_img`` as if it had been read
    from disk. The usual fake pipeline is one ``FDAStyleTransfer`` whose
    references are the other domain's images; ``AtmosphericFog`` fogs a
    clear source online.

    The inner dataset may be a dataset wrapper (``ConcatDataset``,
    ``RepeatDataset``, ``ClassBalancedDataset``): its children are built
    with the empty pipeline (e.g. VOC 2007 + 2012 as one source domain).

    Checked when the dataset is built (``lazy_init=False``), before any
    training step. Invalid pairs, handled by ``invalid_policy`` (all are
    collected first, so one error lists them all, each naming its file): a
    real image without fake (with the count, the first missing files and
    both roots), a real or fake image that is unreadable, truncated or
    damaged inside (``check_images='decode'``: each image is decoded once
    with the pipeline's ``imdecode_backend``/``color_type`` and any decoder
    message, e.g. libjpeg's ``Corrupt JPEG data``, is an error naming the
    file), a real and fake whose EXIF orientations differ or whose decoded
    sizes are each other's transpose (one of them rotated). Always errors:
    an empty set (e.g. an empty target set, or one whose pairs were all
    skipped) and a source set without any box. A fake of another size
    than its real image is resized on loading (``LoadPairedImageFromFile``,
    one warning). An inner
    :class:`YOLOTxtDataset` config without its own ``invalid_policy`` gets
    this one, so that bad label files are handled alike.

    ``metainfo`` is the inner dataset's (no domain in it) without the
    :data:`FORMAT_META_KEYS` (VOC's ``dataset_type``), so a source and a
    target ``PairedDataset`` with the same classes can form an
    :class:`mmengine.dataset.ConcatDataset`. Mixing formats whose default
    palettes differ needs ``ConcatDataset(ignore_keys=['palette'])`` or the
    same ``metainfo`` in both configs.

    Args:
        dataset (dict | BaseDataset): The inner detection dataset or its
            config; its ``pipeline`` is replaced by ``[]``.
        fake_root (str, optional): Folder of the fake images. None: no fake
            files, ``fake_pipeline`` makes them. Defaults to None.
        real_root (str, optional): Folder the real paths are relative to.
            Defaults to the inner dataset's image prefix:
            ``data_prefix['img']`` (``'img_path'`` or ``'sub_data_root'``
            if absent), already joined with its ``data_root``.
        fake_suffixes (Sequence[str]): Extensions tried, in order, for the
            fake image. Defaults to ``('.png', '.jpg', '.jpeg', '.bmp')``.
        domain (str): ``'source'`` (labelled) or ``'target'`` (labels, if
            any, unused for training). Defaults to ``'source'``.
        pipeline (Sequence[dict | callable]): Transforms applied to each
            pair, usually starting with ``LoadPairedImageFromFile``.
            Defaults to ``()``.
        test_mode (bool): Test mode: no refetch of another sample when the
            pipeline returns None. Also the inner dataset's default.
            Defaults to False.
        check_images (bool | str): ``'decode'`` (or True): decode every
            real and fake image once, as the pipeline's first image loader
            (``LoadPairedImageFromFile``) would, and fail on any decoder
            message; ``'header'``: check only the header and the end marker
            (JPEG, PNG); False: no check. The decode costs about one
            training read per image (docs/reliability.md). Defaults to
            True.
        lazy_init (bool): Defer pairing and checks to :meth:`full_init`.
            Defaults to False.
        max_refetch (int): Retries with a random other sample when the
            pipeline returns None. Defaults to 1000.
        invalid_policy (str): ``'raise'``: raise one ``ValueError`` listing
            every invalid pair before training; ``'skip'``: drop them with
            one ``UserWarning`` giving the count and listing them. Defaults
            to ``'raise'``.
        fake_pipeline (Sequence[dict | callable], optional): Transforms that
            make ``results['fake_img']`` (same shape) from the just-loaded
            real ``results['img']``, used when ``fake_root`` is None (exactly
            one of the two must be given). Defaults to None.
        check_workers (int, optional): Processes that decode the images
            (``check_images='decode'``); None: up to 8 (the CPU count) for
            64 images or more, else this process. Defaults to None.

    Example:
        >>> source = dict(
        ...     type='PairedDataset',
        ...     domain='source',
        ...     fake_root='data/cityscapes_in_foggy/leftImg8bit/train/',
        ...     dataset=dict(
        ...         type='YOLOv5CocoDataset',
        ...         data_root='data/cityscapes/',
        ...         ann_file='annotations/cityscapes_train.json',
        ...         data_prefix=dict(img='leftImg8bit/train/'),
        ...         metainfo=dict(classes=('person', 'rider', 'car'))),
        ...     pipeline=[dict(type='LoadPairedImageFromFile'),
        ...               dict(type='mmdet.LoadAnnotations', with_bbox=True),
        ...               dict(type='PackPairedDetInputs')],
        ...     invalid_policy='raise')
        >>> # no fake files: FDA with the other domain's images, online
        >>> source_online = dict(
        ...     source,
        ...     fake_root=None,
        ...     fake_pipeline=[
        ...         dict(type='FDAStyleTransfer',
        ...              ref_path='data/cityscapes/leftImg8bit_foggy/train/',
        ...              beta=0.02, out_key='fake_img')])
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 fake_root: Optional[str] = None,
                 real_root: Optional[str] = None,
                 fake_suffixes: Sequence[str] = ('.png', '.jpg', '.jpeg',
                                                 '.bmp'),
                 domain: str = 'source',
                 pipeline: Sequence[Union[dict, Any]] = (),
                 test_mode: bool = False,
                 check_images: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000,
                 invalid_policy: str = 'raise',
                 fake_pipeline: Optional[Sequence[Union[dict, Any]]] = None,
                 check_workers: Optional[int] = None) -> None:
        if invalid_policy not in INVALID_POLICIES:
            raise ValueError(f'PairedDataset: `invalid_policy` must be one '
                             f'of {INVALID_POLICIES}, got '
                             f'{invalid_policy!r}.')
        self.invalid_policy = invalid_policy
        if domain not in DOMAINS:
            raise ValueError(f'PairedDataset: `domain` must be one of '
                             f'{DOMAINS}, got {domain!r}.')
        if isinstance(fake_pipeline, (dict, BaseTransform)):
            fake_pipeline = [fake_pipeline]
        if bool(fake_root) == bool(fake_pipeline):
            raise ValueError(
                f'PairedDataset ({domain}): set exactly one of `fake_root` '
                '(a folder of fake images with the real images\' relative '
                'paths) and `fake_pipeline` (transforms that make '
                'results["fake_img"] from the loaded results["img"], e.g. '
                '[dict(type="FDAStyleTransfer", ref_path=<images of the '
                'other domain>)]); got '
                f'fake_root={fake_root!r}, fake_pipeline={fake_pipeline!r}.')
        self.domain = domain
        self.fake_root = fake_root or None
        self.fake_pipeline = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in fake_pipeline
        ]) if fake_pipeline else None
        self.fake_suffixes = tuple(fake_suffixes)
        self.test_mode = test_mode
        if check_images is True:
            check_images = 'decode'
        if check_images not in CHECK_IMAGES:
            raise ValueError(
                f'PairedDataset ({domain}): `check_images` must be one of '
                f'{CHECK_IMAGES} or True, got {check_images!r}.')
        self.check_images = check_images
        self.check_workers = check_workers
        self.max_refetch = max_refetch
        self._dataset_cfg = copy.deepcopy(dataset)
        self.dataset = self._build_inner(dataset, test_mode, invalid_policy)
        # mmengine's data sets hand out a fresh copy of each data info
        # (unpickled or deep-copied): copying it again costs ~7% of a cached
        # training batch's CPU time
        self._inner_copies = _returns_copies(self.dataset)
        # only fake files are found through it
        self.real_root = real_root if real_root is not None or \
            self.fake_root is None else self._default_real_root()
        self.pipeline = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in pipeline
        ])
        self.fake_img_paths: List[str] = []
        # positions in the inner dataset of the valid pairs
        self._indices: List[int] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @classmethod
    def _build_inner(cls, dataset: Union[dict, BaseDataset], test_mode: bool,
                     invalid_policy: str) -> BaseDataset:
        """Build the inner dataset with empty pipelines."""
        if not isinstance(dataset, dict):
            return dataset
        return DATASETS.build(
            cls._inner_cfg(dataset, test_mode, invalid_policy))

    @classmethod
    def _inner_cfg(cls, dataset: dict, test_mode: bool,
                   invalid_policy: str) -> dict:
        """The inner config with an empty pipeline, lazily initialized.

        A dataset wrapper (``ConcatDataset``, ``RepeatDataset``,
        ``ClassBalancedDataset``) takes no pipeline: its children get it,
        recursively, and a ``ConcatDataset`` ignores the
        :data:`FORMAT_META_KEYS` when it compares their metainfo.
        """
        cfg = copy.deepcopy(dataset)
        inner_type = cfg.get('type')
        if isinstance(inner_type, str):
            inner_type = DATASETS.get(inner_type)
        # loaded in full_init, where an empty dataset gets a clear message
        cfg['lazy_init'] = True
        if isinstance(inner_type, type) and issubclass(
                inner_type, _DATASET_WRAPPERS):
            children = 'datasets' if 'datasets' in cfg else 'dataset'
            if isinstance(cfg.get(children), dict):
                cfg[children] = cls._inner_cfg(cfg[children], test_mode,
                                               invalid_policy)
            elif isinstance(cfg.get(children), (list, tuple)):
                cfg[children] = [
                    cls._inner_cfg(c, test_mode, invalid_policy)
                    if isinstance(c, dict) else c for c in cfg[children]
                ]
            if issubclass(inner_type, ConcatDataset):
                ignore = cfg.get('ignore_keys') or []
                ignore = [ignore] if isinstance(ignore, str) else list(ignore)
                cfg['ignore_keys'] = ignore + [
                    k for k in FORMAT_META_KEYS if k not in ignore
                ]
            return cfg
        cfg['pipeline'] = []
        if isinstance(inner_type, type) \
                and issubclass(inner_type, YOLOTxtDataset):
            cfg.setdefault('invalid_policy', invalid_policy)
        cfg.setdefault('test_mode', test_mode)
        return cfg

    def _default_real_root(self) -> str:
        """The inner dataset's image folder (data_root already joined)."""
        prefix = getattr(self.dataset, 'data_prefix', {}) or {}
        for key in ('img', 'img_path', 'sub_data_root'):
            if prefix.get(key):
                return prefix[key]
        root = getattr(self.dataset, 'data_root', None)
        if root:
            return root
        raise ValueError(
            'PairedDataset: cannot infer `real_root` from the inner dataset '
            f'{self._describe()}: it has no data_prefix.img and no '
            'data_root; set `real_root`.')

    def _describe(self) -> str:
        """Short description of the inner dataset config for messages."""
        return _describe_cfg(self._dataset_cfg)

    @property
    def metainfo(self) -> dict:
        """dict: The inner dataset's meta information (a copy) without the
        :data:`FORMAT_META_KEYS`."""
        return {
            k: copy.deepcopy(v)
            for k, v in self.dataset.metainfo.items()
            if k not in FORMAT_META_KEYS
        }

    def full_init(self) -> None:
        """Load the inner dataset, pair every image and run the checks."""
        if self._fully_initialized:
            return
        try:
            self.dataset.full_init()
        except ValueError as e:
            # MMEngine fails to serialize an empty data list (np.concatenate
            # of nothing); any other error (e.g. the inner dataset's list of
            # invalid files) is the user's to read
            if 'concatenate' not in str(e) or not any(
                    getattr(d, 'data_list', None) == []
                    for d in _leaf_datasets(self.dataset)):
                raise
            self._raise_empty(e)
        if len(self.dataset) == 0:
            self._raise_empty()
        real_paths = [
            self.dataset.get_data_info(i)['img_path']
            for i in range(len(self.dataset))
        ]
        if self.fake_root is None:
            fakes, problems = [None] * len(real_paths), {}
        else:
            fakes, problems = self._find_fakes(real_paths)
        if self.check_images:
            self._check_pair_images(real_paths, fakes, problems)
        handle_invalid(
            f'PairedDataset ({self.domain})',
            [p for i in sorted(problems) for p in problems[i]],
            len(real_paths), self.invalid_policy,
            f'pairs (real_root={self.real_root!r}, '
            f'fake_root={self.fake_root!r})',
            num_invalid=len(problems))
        self._indices = [
            i for i in range(len(real_paths)) if i not in problems
        ]
        self.fake_img_paths = [fakes[i] for i in self._indices]
        if not self._indices:
            raise ValueError(
                f'PairedDataset ({self.domain}): every pair was invalid and '
                f'skipped; no data left in {self._describe()}.')
        if self.domain == 'source':
            self._check_has_boxes()
        self._fully_initialized = True

    def _check_pair_images(self, real_paths: List[str],
                           fakes: List[Optional[str]],
                           problems: Dict[int, list]) -> None:
        """Check every real and fake image (``check_images``) and each
        pair's orientation, in ``check_workers`` processes; add the
        problems by position."""
        loader = image_loader_settings(self.pipeline)
        todo = [i for i in range(len(real_paths)) if i not in problems]
        num_images = sum(1 if fakes[i] is None else 2 for i in todo)
        workers = 1 if self.check_images == 'header' else check_workers(
            num_images, self.check_workers)
        found = parallel_map(
            _pair_problems,
            [(real_paths[i], fakes[i], self.check_images, loader)
             for i in todo], workers)
        for i, pair_problems in zip(todo, found):
            if pair_problems:
                problems[i] = pair_problems

    def _raise_empty(self, cause: Optional[Exception] = None) -> None:
        """Raise ValueError naming the inner config of an empty dataset."""
        leaves = list(_leaf_datasets(self.dataset))
        which = ''
        if len(leaves) > 1:
            empty = [
                _describe_cfg(d) for d in leaves
                if getattr(d, 'data_list', None) == []
            ]
            which = f' (empty: {", ".join(empty)})'
        raise ValueError(
            f'PairedDataset ({self.domain}): the inner dataset is empty '
            f'after loading and filtering: {self._describe()}{which}; '
            f'real_root={self.real_root!r}.') from cause

    def make_fake(self, results: dict) -> dict:
        """Make the fake image of a just-loaded real image online.

        Called by ``LoadPairedImageFromFile`` for a pair without fake file.

        Args:
            results (dict): Results with the real ``img`` (H, W, 3).

        Returns:
            dict: The results of ``fake_pipeline`` with ``fake_img``, an
            image of the real image's shape.
        """
        if self.fake_pipeline is None:
            raise ValueError(
                f'PairedDataset ({self.domain}) has fake files '
                f'(fake_root={self.fake_root!r}) and no `fake_pipeline`; '
                f'{results.get("img_path")} should have a fake_img_path.')
        shape = results['img'].shape
        results = self.fake_pipeline(results)
        fake = None if results is None else results.get('fake_img')
        if fake is None or fake.shape != shape:
            got = 'no results["fake_img"]' if fake is None \
                else f'a fake_img of shape {fake.shape}'
            raise ValueError(
                f'PairedDataset ({self.domain}): `fake_pipeline` '
                f'{self.fake_pipeline} gave {got} for the image '
                f'{results and results.get("img_path")} of shape {shape}; it '
                'must write results["fake_img"] of the real image\'s shape '
                '(e.g. FDAStyleTransfer / AtmosphericFog with '
                'out_key="fake_img").')
        return results

    def _find_fakes(
            self, real_paths: List[str]) -> Tuple[list, Dict[int, list]]:
        """Map each real path to its fake (None if missing); also return
        the problems by position, with a summary of the missing ones."""
        fakes, missing, problems = [], [], {}
        for i, real in enumerate(real_paths):
            rel = osp.relpath(real, self.real_root)
            if rel.startswith(osp.pardir):
                raise ValueError(
                    f'PairedDataset ({self.domain}): image {real} is not '
                    f'under real_root={self.real_root!r}; set `real_root` to '
                    'the folder the fakes mirror.')
            stem = osp.join(self.fake_root, osp.splitext(rel)[0])
            fake = next((stem + s for s in self.fake_suffixes
                         if osp.isfile(stem + s)), None)
            if fake is None:
                missing.append(f'{stem}{{{",".join(self.fake_suffixes)}}}')
                problems[i] = [f'Missing fake image {missing[-1]} of real '
                               f'image {real}']
            fakes.append(fake)
        if missing:
            more = ' ...' if len(missing) > _MAX_LISTED else ''
            first = min(problems)
            problems[first].insert(
                0, f'{len(missing)} of {len(real_paths)} real images have '
                f'no fake image; first missing: '
                f'{missing[:_MAX_LISTED]}{more}')
        return fakes, problems

    def _check_has_boxes(self) -> None:
        """A source set without a single box cannot train anything."""
        for i in self._indices:
            if self.dataset.get_data_info(i).get('instances'):
                return
        raise ValueError(
            f'PairedDataset (source): no image of {self._describe()} has a '
            'box. Check the annotation file / label folder and that '
            '`metainfo.classes` matches the class names of the annotations.')

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self._indices)

    def get_data_info(self, idx: int) -> dict:
        """Return a copy of the inner data info plus the pair fields.

        Args:
            idx (int): Sample index.

        Returns:
            dict: The data info with ``fake_img_path`` and ``domain``.
        """
        if not self._fully_initialized:
            self.full_init()
        info = self.dataset.get_data_info(self._indices[idx])
        if not self._inner_copies:
            info = copy.deepcopy(info)
        info['fake_img_path'] = self.fake_img_paths[idx]
        info['domain'] = self.domain
        return info

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx`` with ``dataset=self``."""
        info = self.get_data_info(idx)
        info['dataset'] = self
        return self.pipeline(info)

    def __getitem__(self, idx: int) -> Any:
        if not self._fully_initialized:
            self.full_init()
        if self.test_mode:
            data = self.prepare_data(idx)
            if data is None:
                raise RuntimeError(
                    f'PairedDataset ({self.domain}): the pipeline returned '
                    f'None for sample {idx} in test mode.')
            return data
        for _ in range(self.max_refetch + 1):
            data = self.prepare_data(idx)
            if data is not None:
                return data
            idx = np.random.randint(0, len(self))
        raise RuntimeError(
            f'PairedDataset ({self.domain}): the pipeline returned None '
            f'{self.max_refetch + 1} times in a row; check the pipeline and '
            f'the data of {self._describe()}.')

    def __repr__(self) -> str:
        fakes = f'fake_root={self.fake_root!r}' if self.fake_root else \
            f'fake_pipeline={self.fake_pipeline}'
        return (f'{self.__class__.__name__}(domain={self.domain!r}, '
                f'num_pairs={len(self.fake_img_paths)}, '
                f'real_root={self.real_root!r}, {fakes}, '
                f'dataset={self._describe()})')
