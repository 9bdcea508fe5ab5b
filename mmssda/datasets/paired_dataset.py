import copy
import os.path as osp
from typing import Any, List, Optional, Sequence, Union

import numpy as np
from mmengine.dataset import BaseDataset, Compose

from mmssda.registry import DATASETS, TRANSFORMS
from .yolo_txt_dataset import check_image_file

DOMAINS = ('source', 'target')
_MAX_LISTED = 5


@DATASETS.register_module()
class PairedDataset:
    """A detection dataset whose samples are (real, fake) image pairs.

    Wraps any detection dataset (``YOLOv5CocoDataset``, ``mmdet.VOCDataset``,
    ``YOLOTxtDataset``, ...), built with an empty pipeline, and pairs every
    real image with its domain-translated fake: the fake has the same path
    relative to ``fake_root`` as the real image relative to ``real_root``,
    with any of ``fake_suffixes`` as extension (real ``a/b.jpg`` -> fake
    ``a/b.png``). Every data info gains ``fake_img_path`` (str) and ``domain``
    (``'source'`` | ``'target'``). The pipeline runs with
    ``results['dataset'] = self`` so that ``PairedMosaic`` draws partners
    from the same pairs.

    Checked when the dataset is built (``lazy_init=False``), before any
    training step: the inner dataset is not empty, every real image has a
    fake (``ValueError`` with the count, the first missing files and both
    roots), the images are readable and complete (``check_images``), and a
    source set has at least one box.

    ``metainfo`` is the inner dataset's (no domain in it), so a source and a
    target ``PairedDataset`` with the same classes can form an
    :class:`mmengine.dataset.ConcatDataset`. Mixing formats whose default
    palettes differ needs ``ConcatDataset(ignore_keys=['palette'])`` or the
    same ``metainfo`` in both configs.

    Args:
        dataset (dict | BaseDataset): The inner detection dataset or its
            config; its ``pipeline`` is replaced by ``[]``.
        fake_root (str): Folder of the fake images.
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
        check_images (bool): Check that every real and fake image is
            readable and complete (header and end marker only). Defaults to
            True.
        lazy_init (bool): Defer pairing and checks to :meth:`full_init`.
            Defaults to False.
        max_refetch (int): Retries with a random other sample when the
            pipeline returns None. Defaults to 1000.

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
        ...               dict(type='PackPairedDetInputs')])
    """

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 fake_root: str,
                 real_root: Optional[str] = None,
                 fake_suffixes: Sequence[str] = ('.png', '.jpg', '.jpeg',
                                                 '.bmp'),
                 domain: str = 'source',
                 pipeline: Sequence[Union[dict, Any]] = (),
                 test_mode: bool = False,
                 check_images: bool = True,
                 lazy_init: bool = False,
                 max_refetch: int = 1000) -> None:
        if domain not in DOMAINS:
            raise ValueError(f'PairedDataset: `domain` must be one of '
                             f'{DOMAINS}, got {domain!r}.')
        if not fake_root:
            raise ValueError('PairedDataset: `fake_root` is required.')
        self.domain = domain
        self.fake_root = fake_root
        self.fake_suffixes = tuple(fake_suffixes)
        self.test_mode = test_mode
        self.check_images = check_images
        self.max_refetch = max_refetch
        self._dataset_cfg = copy.deepcopy(dataset)
        self.dataset = self._build_inner(dataset, test_mode)
        self.real_root = real_root if real_root is not None \
            else self._default_real_root()
        self.pipeline = Compose([
            TRANSFORMS.build(t) if isinstance(t, dict) else t
            for t in pipeline
        ])
        self.fake_img_paths: List[str] = []
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @staticmethod
    def _build_inner(dataset: Union[dict, BaseDataset],
                     test_mode: bool) -> BaseDataset:
        """Build the inner dataset with an empty pipeline."""
        if not isinstance(dataset, dict):
            return dataset
        cfg = copy.deepcopy(dataset)
        cfg['pipeline'] = []
        cfg.setdefault('test_mode', test_mode)
        # loaded in full_init, where an empty dataset gets a clear message
        cfg['lazy_init'] = True
        return DATASETS.build(cfg)

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
        cfg = self._dataset_cfg
        if not isinstance(cfg, dict):
            return type(cfg).__name__
        keys = ('type', 'data_root', 'ann_file', 'data_prefix')
        return str({k: cfg[k] for k in keys if k in cfg})

    @property
    def metainfo(self) -> dict:
        """dict: The inner dataset's meta information (a copy)."""
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Load the inner dataset, pair every image and run the checks."""
        if self._fully_initialized:
            return
        try:
            self.dataset.full_init()
        except ValueError as e:
            # MMEngine fails to serialize an empty data list
            if getattr(self.dataset, 'data_list', None) != []:
                raise
            self._raise_empty(e)
        if len(self.dataset) == 0:
            self._raise_empty()
        real_paths = [
            self.dataset.get_data_info(i)['img_path']
            for i in range(len(self.dataset))
        ]
        self.fake_img_paths = self._find_fakes(real_paths)
        if self.check_images:
            for real, fake in zip(real_paths, self.fake_img_paths):
                check_image_file(real)
                check_image_file(fake)
        if self.domain == 'source':
            self._check_has_boxes()
        self._fully_initialized = True

    def _raise_empty(self, cause: Optional[Exception] = None) -> None:
        """Raise ValueError naming the inner config of an empty dataset."""
        raise ValueError(
            f'PairedDataset ({self.domain}): the inner dataset is empty '
            f'after loading and filtering: {self._describe()}; '
            f'real_root={self.real_root!r}.') from cause

    def _find_fakes(self, real_paths: List[str]) -> List[str]:
        """Map each real path to its fake; raise listing the missing ones."""
        fakes, missing = [], []
        for real in real_paths:
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
            fakes.append(fake)
        if missing:
            more = ' ...' if len(missing) > _MAX_LISTED else ''
            raise ValueError(
                f'PairedDataset ({self.domain}): {len(missing)} of '
                f'{len(real_paths)} real images have no fake image '
                f'(real_root={self.real_root!r}, '
                f'fake_root={self.fake_root!r}); first missing: '
                f'{missing[:_MAX_LISTED]}{more}')
        return fakes

    def _check_has_boxes(self) -> None:
        """A source set without a single box cannot train anything."""
        for i in range(len(self.dataset)):
            if self.dataset.get_data_info(i).get('instances'):
                return
        raise ValueError(
            f'PairedDataset (source): no image of {self._describe()} has a '
            'box. Check the annotation file / label folder and that '
            '`metainfo.classes` matches the class names of the annotations.')

    def __len__(self) -> int:
        if not self._fully_initialized:
            self.full_init()
        return len(self.dataset)

    def get_data_info(self, idx: int) -> dict:
        """Return a copy of the inner data info plus the pair fields.

        Args:
            idx (int): Sample index.

        Returns:
            dict: The data info with ``fake_img_path`` and ``domain``.
        """
        if not self._fully_initialized:
            self.full_init()
        info = copy.deepcopy(self.dataset.get_data_info(idx))
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
        return (f'{self.__class__.__name__}(domain={self.domain!r}, '
                f'num_pairs={len(self.fake_img_paths)}, '
                f'real_root={self.real_root!r}, '
                f'fake_root={self.fake_root!r}, dataset={self._describe()})')
