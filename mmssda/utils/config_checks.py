"""Strict option dicts: an unknown key is an error that names it.

MMEngine merges a config's option dicts into their defaults, so a misspelt
key (``empty_psuedo_policy``) would otherwise train with the default
without a word. :func:`check_option_keys` compares a dict with the keys
its reader knows, recursively, and names the first unknown key by its full
path, with the nearest valid spelling (:func:`difflib.get_close_matches`)::

    >>> check_option_keys(dict(empty_psuedo_policy='ignore'),
    ...                   dict(empty_pseudo_policy='background'),
    ...                   'model.semi_train_cfg')
    Traceback (most recent call last):
    ...
    UnknownOptionError: model.semi_train_cfg.empty_psuedo_policy is not an
    option; did you mean empty_pseudo_policy? ...
"""
import difflib
from typing import Any, Collection, Mapping, Union

#: The keys of a NMS config (``pseudo_label_cfg.nms``): what mmcv 2.0's
#: ``batched_nms`` reads (``type``, ``class_agnostic``, ``split_thr``) and
#: the arguments of the ops it calls (``nms``: ``iou_threshold``, ``offset``,
#: ``score_threshold``, ``max_num``, ``iou_thr`` its deprecated name;
#: ``soft_nms``: ``sigma``, ``min_score``, ``method``).
NMS_CFG_KEYS = dict.fromkeys(
    ('type', 'iou_threshold', 'iou_thr', 'class_agnostic', 'split_thr',
     'offset', 'score_threshold', 'max_num', 'sigma', 'min_score', 'method'))

#: The keys a detector head's ``predict_by_feat`` reads from its ``cfg``
#: (the test cfg; ``SSDADetector`` passes ``semi_train_cfg.pseudo_label_cfg``
#: there), as their code reads them in mmyolo 0.6 and mmdet 3.3:
#:
#: - mmyolo ``YOLOv5Head.predict_by_feat`` (also the YOLOv6/v7/v8, RTMDet,
#:   PPYOLOE and YOLOX heads, which inherit it): ``multi_label``,
#:   ``score_thr``, ``nms_pre``, ``yolox_style``, ``max_per_img``, ``nms``
#:   and, through mmdet's ``_bbox_post_process``, ``min_bbox_size``;
#: - mmdet ``BaseDenseHead._predict_by_feat_single``/``_bbox_post_process``
#:   (RTMDet, YOLOX, ATSS, FCOS, GFL, ...): ``nms_pre``, ``score_thr``,
#:   ``min_bbox_size``, ``nms``, ``max_per_img``; ``YOLOV3Head``:
#:   ``conf_thr``.
#:
#: ``keep_top_k`` (in some older mmdet configs) and ``with_nms`` (an
#: argument of ``_bbox_post_process``, not a cfg key) are read by none of
#: them, so they are refused like any other key that would do nothing.
#: A value that is a mapping is the schema of a nested dict.
HEAD_TEST_CFG_KEYS = dict(
    multi_label=None,
    nms_pre=None,
    score_thr=None,
    conf_thr=None,
    nms=NMS_CFG_KEYS,
    max_per_img=None,
    min_bbox_size=None,
    yolox_style=None)

#: A schema: the valid keys, as a collection of names, or as a mapping from
#: each name to the schema of its nested dict (a mapping); any other value
#: (e.g. a default value) marks a leaf.
Schema = Union[Mapping[str, Any], Collection[str]]


class UnknownOptionError(ValueError):
    """A config dict has a key that its reader does not know."""


def _nested_schema(schema: Schema, key: str) -> Any:
    """The schema of ``key``'s nested dict, or None for a leaf."""
    sub = schema[key] if isinstance(schema, Mapping) else None
    return sub if isinstance(sub, Mapping) else None


def check_option_keys(options: Any, schema: Schema, path: str) -> None:
    """Raise if ``options`` (recursively) has a key ``schema`` lacks.

    Args:
        options (Mapping | None): The user's dict (e.g. a config's
            ``semi_train_cfg``). None or a non-mapping value is not checked
            (its reader checks the type).
        schema (Mapping | Collection[str]): The valid keys. In a mapping, a
            value that is itself a mapping is the schema of that key's
            nested dict (e.g. :data:`HEAD_TEST_CFG_KEYS` for
            ``pseudo_label_cfg``); any other value is a leaf.
        path (str): The dict's key path in the config (e.g.
            ``'model.semi_train_cfg'``), for the message.

    Raises:
        UnknownOptionError: Naming ``path.key`` and the nearest valid
            spelling, or the valid keys if none is close.
    """
    if not isinstance(options, Mapping):
        return
    valid = list(schema.keys() if isinstance(schema, Mapping) else schema)
    for key, value in options.items():
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f'did you mean {close[0]}?' if close else \
                'no valid key is close.'
            raise UnknownOptionError(
                f'{path}.{key} is not an option; {hint} The options of '
                f'{path} are: {", ".join(sorted(valid))}.')
        sub = _nested_schema(schema, key)
        if sub is not None:
            check_option_keys(value, sub, f'{path}.{key}')
