"""Strict option dicts: a misspelt key in an SSDA option dict stops the
build with its full key path and the nearest valid spelling."""
import pytest
from mmengine.registry import DefaultScope

from mmssda.registry import HOOKS, MODELS
from mmssda.utils.config_checks import (HEAD_TEST_CFG_KEYS, UnknownOptionError,
                                        check_option_keys)
from tests.test_models.utils import ssda_cfg


def test_check_option_keys_names_path_and_nearest_key():
    schema = dict(a=1, pseudo_label_cfg=HEAD_TEST_CFG_KEYS)
    check_option_keys(
        dict(a=2, pseudo_label_cfg=dict(score_thr=0.1, nms=dict(
            type='nms', iou_threshold=0.5))), schema, 'root')
    check_option_keys(None, schema, 'root')  # nothing given: the defaults
    with pytest.raises(UnknownOptionError) as e:
        check_option_keys(dict(pseudo_label_cfg=dict(score_trh=0.1)), schema,
                          'root')
    assert str(e.value).startswith('root.pseudo_label_cfg.score_trh is not '
                                   'an option; did you mean score_thr?')
    with pytest.raises(UnknownOptionError, match='no valid key is close'):
        check_option_keys(dict(zzzz=1), schema, 'root')
    # a default value that is not a mapping is a leaf, not a schema
    check_option_keys(dict(a=dict(anything=1)), schema, 'root')


def build_ssda(**kwargs):
    with DefaultScope.overwrite_default_scope('mmssda'):
        return MODELS.build(ssda_cfg(**kwargs))


@pytest.mark.parametrize('kwargs, message', [
    (dict(semi_train_cfg=dict(empty_psuedo_policy='ignore')),
     'model.semi_train_cfg.empty_psuedo_policy is not an option; did you '
     'mean empty_pseudo_policy?'),
    (dict(semi_train_cfg=dict(pseudo_label_cfg=dict(score_thresh=0.3))),
     'model.semi_train_cfg.pseudo_label_cfg.score_thresh is not an option; '
     'did you mean score_thr?'),
    (dict(semi_train_cfg=dict(pseudo_label_cfg=dict(
        nms=dict(type='nms', iou_thresh=0.3)))),
     'model.semi_train_cfg.pseudo_label_cfg.nms.iou_thresh is not an '
     'option; did you mean iou_threshold?'),
    (dict(semi_test_cfg=dict(predict_onn='teacher')),
     'model.semi_test_cfg.predict_onn is not an option; did you mean '
     'predict_on?'),
])
def test_ssda_detector_refuses_misspelt_keys(kwargs, message):
    with pytest.raises(UnknownOptionError) as e:
        build_ssda(**kwargs)
    assert str(e.value).startswith(message)


def test_ssda_detector_takes_every_head_test_cfg_key():
    """Keys a head reads (here the recipe's and mmdet's ``min_bbox_size``)
    pass, and reach the merged pseudo-label cfg."""
    model = build_ssda(
        semi_train_cfg=dict(
            pseudo_label_cfg=dict(min_bbox_size=2, yolox_style=False)))
    assert model.semi_train_cfg.pseudo_label_cfg.min_bbox_size == 2
    assert model.semi_train_cfg.pseudo_label_cfg.score_thr == 0.5


def test_student_ema_hook_refuses_misspelt_ema_option():
    """The averaged model's options are checked when the hook is built,
    not at ``before_run`` after the whole runner."""
    with DefaultScope.overwrite_default_scope('mmssda'):
        with pytest.raises(UnknownOptionError) as e:
            HOOKS.build(dict(type='StudentEMAHook', gama=100))
        assert str(e.value).startswith(
            'StudentEMAHook.gama is not an option; did you mean gamma?')
        hook = HOOKS.build(
            dict(type='StudentEMAHook', interval=2, begin_iter=3))
    assert hook.ema_cfg['interval'] == 2 and hook.begin_iter == 3
