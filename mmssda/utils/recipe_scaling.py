"""The image-size and class-count dependent values of a YOLO recipe, derived
in one place.

MMEngine evaluates config files one at a time: a child that sets
``img_scale = (960, 960)`` does not re-evaluate the expressions its base
computed from the base's ``img_scale``. :func:`scale_recipe` recomputes them
in place, found by component type (not by list index), from the
``img_scale`` and ``num_classes`` the config holds:

==============================  ============================================
component                       value
==============================  ============================================
``Mosaic``, ``PairedMosaic``    ``img_scale``
``YOLOv5RandomAffine`` after a  ``border = (-w // 2, -h // 2)`` (the mosaic
mosaic (also inside a           is twice ``img_scale``; the affine crops it
``PairedTransform``)            back)
``YOLOv5KeepRatioResize``,      ``scale = img_scale``
``LetterResize``
``BatchShapePolicy``            ``img_size = w``
``LoadPairedImageFromFile``     ``cache_scale = img_scale`` (image cache)
``YOLOv5Head``                  ``loss_cls`` weight ``cls_gain * num_classes
                                / 80 * 3 / layers``, ``loss_obj`` weight
                                ``obj_gain * (w / 640) ** 2 * 3 / layers``
                                (YOLOv5's hyp scaling)
any nested ``num_classes`` key  ``num_classes`` (head modules, assigners)
==============================  ============================================

``cls_gain``/``obj_gain`` are the config's ``loss_cls_weight`` and
``loss_obj_weight`` (mmyolo's names; 0.5 and 1.0 by default) and ``layers``
is the number of ``featmap_strides`` of the head module. Data sets whose
``metainfo['classes']`` count differs from ``num_classes`` (in the
:data:`BUILT_KEYS`) are an error.
``TestTimeAug`` subtrees (mmyolo's multi-scale TTA) are left alone.

A child config that changes the size or the class count sets the two
variables and ends with one call (functions are not config keys)::

    _base_ = './ssda_yolov5s_city2foggy.py'
    from mmssda.utils import scale_recipe  # noqa: E402

    img_scale = (960, 960)
    scale_recipe(vars())

``vars()`` is the file's namespace: the call updates the base (``_base_``,
which MMEngine merges the file into) and the file's own dicts in place.
:func:`recipe_mismatches` tells which values of a finished config do not
follow its ``img_scale``/``num_classes`` (e.g. a config changed in code
after parsing). ``--cfg-options img_scale=...`` (or ``num_classes``,
``loss_cls_weight``, ``loss_obj_weight``) on tools/train.py and
tools/test.py calls :func:`scale_recipe` again on the merged config of a
recipe that calls it (:func:`mmssda.utils.config_overrides.
merge_cfg_options`), so the override reaches every value listed above.
"""
import copy
import math
from typing import Any, List, MutableMapping, Optional, Sequence, Tuple

MOSAICS = ('Mosaic', 'PairedMosaic')
AFFINES = ('YOLOv5RandomAffine', )
RESIZES = ('YOLOv5KeepRatioResize', 'LetterResize')
YOLOV5_HEADS = ('YOLOv5Head', )
BASE_KEY = '_base_'
#: The parts of a config the runner builds: :func:`recipe_mismatches` and the
#: class-count check look only there (helper variables such as a top-level
#: ``detector`` or ``metainfo`` are not built).
BUILT_KEYS = ('model', 'train_dataloader', 'val_dataloader',
              'test_dataloader')


def _type_name(node: Any) -> str:
    """``type`` of a config dict without its scope (``'mmdet.X'`` -> X)."""
    if not isinstance(node, MutableMapping):
        return ''
    type_ = node.get('type', '')
    return type_.split('.')[-1] if isinstance(type_, str) else ''


class _Scaler:
    """One walk over a config tree; see :func:`scale_recipe`."""

    def __init__(self, img_scale: Tuple[int, int], num_classes: int,
                 cls_gain: float, obj_gain: float) -> None:
        self.img_scale = img_scale
        self.num_classes = num_classes
        self.cls_gain = cls_gain
        self.obj_gain = obj_gain

    def walk(self, node: Any, path: str) -> None:
        if isinstance(node, MutableMapping):
            self.visit_dict(node, path)
        elif isinstance(node, list):
            self.visit_list(node, path)

    def visit_dict(self, node: MutableMapping, path: str) -> None:
        name = _type_name(node)
        if name == 'TestTimeAug':
            return
        if name in MOSAICS:
            node['img_scale'] = self.img_scale
        elif name in RESIZES:
            node['scale'] = self.img_scale
        elif name == 'BatchShapePolicy':
            node['img_size'] = self.img_scale[0]
        elif name == 'LoadPairedImageFromFile':
            node['cache_scale'] = self.img_scale
        elif name in YOLOV5_HEADS:
            self.scale_yolov5_head(node)
        if 'num_classes' in node:
            node['num_classes'] = self.num_classes
        self.check_classes(node, path)
        for key, value in node.items():
            self.walk(value, f'{path}.{key}')

    def visit_list(self, node: list, path: str) -> None:
        """A list may be a pipeline: affines after a mosaic get borders."""
        after_mosaic = False
        for i, item in enumerate(node):
            after_mosaic |= _type_name(item) in MOSAICS
            if after_mosaic:
                for affine in self.affines(item):
                    affine['border'] = (-self.img_scale[0] // 2,
                                        -self.img_scale[1] // 2)
            self.walk(item, f'{path}.{i}')

    @staticmethod
    def affines(item: Any) -> List[MutableMapping]:
        """The item if it is an affine, or the affines a wrapper (e.g.
        ``PairedTransform``) applies."""
        if _type_name(item) in AFFINES:
            return [item]
        inner = item.get('transforms', []) \
            if isinstance(item, MutableMapping) else []
        return [t for t in inner if _type_name(t) in AFFINES]

    def scale_yolov5_head(self, head: MutableMapping) -> None:
        module = head.get('head_module', {})
        layers = len(module.get('featmap_strides', (8, 16, 32)))
        if isinstance(head.get('loss_cls'), MutableMapping):
            head['loss_cls']['loss_weight'] = (
                self.cls_gain * self.num_classes / 80 * 3 / layers)
        if isinstance(head.get('loss_obj'), MutableMapping):
            head['loss_obj']['loss_weight'] = (
                self.obj_gain * (self.img_scale[0] / 640)**2 * 3 / layers)

    def check_classes(self, node: MutableMapping, path: str) -> None:
        if path.split('.')[0] not in BUILT_KEYS:
            return  # a helper variable of a config file
        metainfo = node.get('metainfo')
        classes = metainfo.get('classes') \
            if isinstance(metainfo, MutableMapping) else None
        if classes is not None and len(classes) != self.num_classes:
            raise ValueError(
                f'{path}.metainfo.classes has {len(classes)} classes but '
                f'num_classes={self.num_classes}; set num_classes = '
                'len(classes) in the config.')


def _lookup(cfg: MutableMapping, key: str) -> Any:
    """``cfg[key]``, else the base's value."""
    if key in cfg:
        return cfg[key]
    base = cfg.get(BASE_KEY)
    if isinstance(base, MutableMapping) and key in base:
        return base[key]
    raise KeyError(f'scale_recipe: the config has no `{key}`.')


def scale_recipe(cfg: MutableMapping,
                 img_scale: Optional[Sequence[int]] = None,
                 num_classes: Optional[int] = None) -> MutableMapping:
    """Set every size- and class-dependent value of a YOLO config in place.

    Args:
        cfg (MutableMapping): A config (``Config``/``ConfigDict``/dict), or
            a config file's namespace (``vars()``), whose ``_base_`` is then
            updated too. Keys starting with ``__`` are skipped.
        img_scale (Sequence[int], optional): ``(width, height)``. None reads
            ``cfg['img_scale']`` (or the base's).
        num_classes (int, optional): Number of classes. None reads
            ``cfg['num_classes']`` (or the base's).

    Returns:
        MutableMapping: ``cfg``, with ``img_scale`` and ``num_classes`` set.

    Raises:
        ValueError: A data set's ``metainfo['classes']`` count differs from
            ``num_classes``.
    """
    img_scale = tuple(
        _lookup(cfg, 'img_scale') if img_scale is None else img_scale)
    num_classes = int(
        _lookup(cfg, 'num_classes') if num_classes is None else num_classes)
    if len(img_scale) != 2:
        raise ValueError(f'img_scale must be (width, height), got '
                         f'{img_scale}.')
    gains = {}
    for key, default in (('loss_cls_weight', 0.5), ('loss_obj_weight', 1.0)):
        try:
            gains[key] = _lookup(cfg, key)
        except KeyError:
            gains[key] = default
    cfg['img_scale'] = img_scale
    cfg['num_classes'] = num_classes
    scaler = _Scaler(img_scale, num_classes, gains['loss_cls_weight'],
                     gains['loss_obj_weight'])
    for key, value in list(cfg.items()):
        if key.startswith('__'):
            continue
        if key == BASE_KEY and isinstance(value, MutableMapping):
            value['img_scale'] = img_scale
            value['num_classes'] = num_classes
            for base_key, base_value in value.items():
                scaler.walk(base_value, base_key)
        else:
            scaler.walk(value, key)
    return cfg


def _diff(a: Any, b: Any, path: str, out: List[str]) -> None:
    if isinstance(a, MutableMapping) and isinstance(b, MutableMapping):
        for key in a:
            if key in b:
                _diff(a[key], b[key], f'{path}.{key}' if path else key, out)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) \
            and len(a) == len(b) and any(
                isinstance(x, (MutableMapping, list)) for x in a):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f'{path}.{i}', out)
    elif isinstance(a, float) and isinstance(b, float):
        if not math.isclose(a, b, rel_tol=1e-9):
            out.append(f'{path}={a!r} (img_scale/num_classes give {b!r})')
    elif a != b and not (isinstance(a, (list, tuple))
                         and isinstance(b, (list, tuple))
                         and list(a) == list(b)):
        out.append(f'{path}={a!r} (img_scale/num_classes give {b!r})')


def recipe_mismatches(cfg: MutableMapping) -> List[str]:
    """Values of a finished config that do not follow its ``img_scale`` and
    ``num_classes``.

    Args:
        cfg (MutableMapping): The merged config (e.g. ``runner.cfg``) with
            top-level ``img_scale`` and ``num_classes``.

    Returns:
        list[str]: ``'key.path=value (img_scale/num_classes give x)'`` per
        stale value in :data:`BUILT_KEYS`; empty when they all follow.
    """
    to_dict = getattr(cfg, 'to_dict', None)
    plain = to_dict() if callable(to_dict) else dict(cfg)
    built = {k: plain[k] for k in BUILT_KEYS if plain.get(k) is not None}
    built.update(
        {k: plain[k]
         for k in ('img_scale', 'num_classes', 'loss_cls_weight',
                   'loss_obj_weight') if k in plain})
    scaled = scale_recipe(copy.deepcopy(built))
    out: List[str] = []
    _diff(built, scaled, '', out)
    return out
