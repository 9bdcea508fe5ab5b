"""The recipe's size- and class-dependent values follow img_scale and
num_classes, set once in a child config (mmssda.utils.scale_recipe)."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmssda.utils import recipe_mismatches
from tests.test_models.utils import REPO

CITY2FOGGY = osp.join(REPO, 'configs', 'ssda_yolov5s_city2foggy.py')
FOG_SHAPES = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes.py')


def write_child(tmp_path, base, body, call=True):
    path = tmp_path / 'child.py'
    lines = [f'_base_ = {base!r}',
             'import mmssda.utils as mmssda_utils  # noqa: E402', body]
    if call:
        lines.append('mmssda_utils.scale_recipe(vars())')
    path.write_text('\n'.join(lines) + '\n')
    return Config.fromfile(str(path))


def types(pipeline):
    for t in pipeline:
        yield t
        yield from types(t.get('transforms', []))
        yield from types(t.get('pre_transform', []))


def derived(cfg):
    """Every size- and class-dependent value a run builds."""
    out = dict(mosaic=set(), border=set(), test_scale=set(), batch_shape=set(),
               cache_scale=set())
    for paired in cfg.train_dataloader.dataset.datasets:
        for t in types(paired.pipeline):
            if t.type == 'LoadPairedImageFromFile':
                out['cache_scale'].add(tuple(t.cache_scale))
            if t.type == 'PairedMosaic':
                out['mosaic'].add(tuple(t.img_scale))
            if t.type == 'YOLOv5RandomAffine':
                out['border'].add(tuple(t.border))
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        for t in loader.dataset.pipeline:
            if t.type in ('YOLOv5KeepRatioResize', 'LetterResize'):
                out['test_scale'].add(tuple(t.scale))
        shapes = loader.dataset.get('batch_shapes_cfg')
        if shapes is not None:
            out['batch_shape'].add(shapes.img_size)
    head = cfg.model.detector.bbox_head
    out.update(
        num_classes=head.head_module.num_classes,
        loss_cls=head.loss_cls.loss_weight,
        loss_obj=head.loss_obj.loss_weight)
    return out


def expected(img_scale, num_classes, batch_shape=True):
    w, h = img_scale
    return dict(
        mosaic={(w, h)},
        cache_scale={(w, h)},
        border={(-w // 2, -h // 2)},
        test_scale={(w, h)},
        batch_shape={w} if batch_shape else set(),
        num_classes=num_classes,
        loss_cls=pytest.approx(0.5 * num_classes / 80),
        loss_obj=pytest.approx((w / 640)**2))


@pytest.mark.parametrize('img_scale', [(320, 256), (960, 960)])
def test_child_sets_img_scale_once(tmp_path, img_scale):
    cfg = write_child(tmp_path, CITY2FOGGY, f'img_scale = {img_scale}')
    assert derived(cfg) == expected(img_scale, 8)
    assert cfg.img_scale == img_scale and cfg.num_classes == 8
    assert recipe_mismatches(cfg) == []
    # the base itself is at 640
    assert derived(Config.fromfile(CITY2FOGGY)) == expected((640, 640), 8)


def test_shipped_configs_follow_their_sizes():
    fog = Config.fromfile(FOG_SHAPES)
    assert derived(fog) == expected((192, 192), 3, batch_shape=False)
    large = Config.fromfile(
        osp.join(REPO, 'configs', 'ssda_yolov5l_city2foggy_960.py'))
    assert derived(large) == expected((960, 960), 8)


def test_num_classes_and_classes_must_agree(tmp_path):
    body = ("class_name = ('a', 'b', 'c', 'd')\n"
            'num_classes = len(class_name)\n')
    with pytest.raises(ValueError, match=r'datasets\.0\.dataset\.metainfo'
                       r'\.classes has 3 classes but num_classes=4'):
        write_child(tmp_path, FOG_SHAPES, body)
    # the data sets get the four classes too: everything follows
    body += ('for d in _base_.train_dataloader.dataset.datasets:\n'
             '    d.dataset.metainfo = dict(classes=class_name)\n'
             '_base_.val_dataloader.dataset.metainfo = '
             'dict(classes=class_name)\n'
             '_base_.test_dataloader.dataset.metainfo = '
             'dict(classes=class_name)\n')
    cfg = write_child(tmp_path, FOG_SHAPES, body)
    assert derived(cfg) == expected((192, 192), 4, batch_shape=False)


def test_values_that_do_not_follow_are_reported(tmp_path):
    # a child that forgets scale_recipe, and a --cfg-options override
    forgot = write_child(tmp_path, CITY2FOGGY, 'img_scale = (320, 320)',
                         call=False)
    cli = Config.fromfile(CITY2FOGGY)
    cli.merge_from_dict({'img_scale': (320, 320)})
    for cfg in (forgot, cli):
        stale = recipe_mismatches(cfg)
        assert ('train_dataloader.dataset.datasets.0.pipeline.2.img_scale='
                '(640, 640) (img_scale/num_classes give (320, 320))') in stale
        assert any(s.startswith('model.detector.bbox_head.loss_obj.'
                                'loss_weight=1.0') for s in stale)
        assert any(s.startswith('val_dataloader.dataset.pipeline.2.scale')
                   for s in stale)
