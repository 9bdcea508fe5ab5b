import os.path as osp
import sys

import cv2
import numpy as np
import pytest
from mmdet.visualization.palette import get_palette
from mmyolo.datasets import YOLOv5CocoDataset

from tests.conftest import CONFIG_DIR
from tests.test_models.utils import TINY_YOLOV5
from tests.training_helpers import REPO, TINY_SSDA, make_fog_shapes

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import browse_dataset  # noqa: E402

#: fog_shapes classes ('box', 'disc', 'triangle') have no palette: the tool
#: draws with mmdet's seeded random one (RGB).
PALETTE = get_palette('random', 3)
COCO_PALETTE = YOLOv5CocoDataset.METAINFO['palette']
TINY_SSDA_EVAL = osp.join(CONFIG_DIR, 'tiny_ssda_fog_shapes_eval.py')


@pytest.fixture(scope='module')
def fog_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('browse')
    make_fog_shapes(root, num_source=2, num_target=2)
    return root


def outline_match(drawn, box, color_bgr, tol=60):
    """Fraction of the pixels along the bottom or the right edge of
    ``box``, whichever matches better (label texts, its own at the top-left
    corner and wide ones of its neighbours, may cover an edge), whose colour
    is within ``tol`` of ``color_bgr``; each edge at the offset (-1, 0, +1
    px) where it matches best."""
    h, w = drawn.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    color = np.array(color_bgr, int)
    fractions = []
    for horizontal in (True, False):
        best = 0.
        for d in (-1, 0, 1):
            if horizontal:
                y = min(max(y2 + d, 0), h - 1)
                line = drawn[y, max(x1 + 4, 0):min(x2 - 3, w)]
            else:
                x = min(max(x2 + d, 0), w - 1)
                line = drawn[max(y1 + 4, 0):min(y2 - 3, h), x]
            if len(line):
                close = np.abs(line.astype(int) - color).max(1) <= tol
                best = max(best, close.mean())
        fractions.append(best)
    return max(fractions)


def overlaps(box, others, margin=6):
    """Whether ``box`` grown by ``margin`` px meets any of ``others``."""
    x1, y1, x2, y2 = box
    return any(ox1 < x2 + margin and ox2 > x1 - margin and
               oy1 < y2 + margin and oy2 > y1 - margin
               for ox1, oy1, ox2, oy2 in others)


def assert_boxes_drawn(stream, palette=PALETTE):
    """Every box of a stream with edges inside the image, of at least 12
    px and clear of the other boxes (whose outlines and labels would cover
    its edges) shows the class colour along its outline in the written
    file."""
    drawn = cv2.imread(stream['file'])
    h, w = drawn.shape[:2]
    checked = 0
    boxes = stream['bboxes']
    for i, (box, label) in enumerate(zip(boxes, stream['labels'])):
        x1, y1, x2, y2 = box
        if x1 < 2 or y1 < 2 or x2 > w - 3 or y2 > h - 3 or \
                min(x2 - x1, y2 - y1) < 12 or \
                overlaps(box, np.delete(boxes, i, axis=0)):
            continue
        color_bgr = palette[label][::-1]
        assert outline_match(drawn, box, color_bgr) > 0.8, (
            stream['file'], box, label)
        checked += 1
    return checked


def test_train_batch_draws_each_stream_of_each_pair(
        fog_root, monkeypatch, tmp_path):
    """A batch of the tiny SSDA config (2 source + 2 target pairs): a file
    per stream and one side-by-side file per pair; real and fake of a pair
    carry the same boxes and both show them in the class colour."""
    monkeypatch.chdir(fog_root)
    out = str(tmp_path / 'browse')
    records = browse_dataset.main(
        [TINY_SSDA, '--output-dir', out, '--not-show', '-n', '4'])

    assert [r['kind'] for r in records] == ['source'] * 2 + ['target'] * 2
    checked = 0
    for record in records:
        kind = record['kind']
        streams = record['streams']
        assert list(streams) == [f'{kind}_real', f'{kind}_fake']
        real, fake = streams[f'{kind}_real'], streams[f'{kind}_fake']
        for stream, drawn in streams.items():
            assert drawn['file'] == osp.join(
                out, f'{record["index"]:04d}_{stream}.jpg')
            assert osp.isfile(drawn['file'])
        assert osp.isfile(record['pair_file'])
        assert record['pair_file'].endswith(f'_{kind}_pair.jpg')
        # the fake image, not the real one twice
        assert f'/{kind}_fake/' in fake['path']
        assert f'/{kind}/' in real['path']
        assert not np.array_equal(
            cv2.imread(real['file']), cv2.imread(fake['file']))
        np.testing.assert_array_equal(real['bboxes'], fake['bboxes'])
        np.testing.assert_array_equal(real['labels'], fake['labels'])
        checked += assert_boxes_drawn(real) + assert_boxes_drawn(fake)
        # the side-by-side picture holds both drawings
        pair = cv2.imread(record['pair_file'])
        assert pair.shape[1] > 2 * cv2.imread(real['file']).shape[1]
    assert checked >= 4


def test_val_phase_draws_boxes_after_the_letterbox(
        fog_root, monkeypatch, tmp_path):
    """``--phase val`` draws the test pipeline's letterboxed image with
    the ground truth moved with it, in the palette of the data set (the
    validation set is a YOLOv5CocoDataset: COCO's)."""
    monkeypatch.chdir(fog_root)
    out = str(tmp_path / 'val')
    records = browse_dataset.main([
        TINY_SSDA_EVAL, '--phase', 'val', '--output-dir', out, '--not-show',
        '--show-number', '2'
    ])
    assert len(records) == 2
    checked = 0
    for record in records:
        stream = record['streams']['val']
        assert stream['file'] == osp.join(out,
                                          f'{record["index"]:04d}_val.jpg')
        drawn = cv2.imread(stream['file'])
        assert drawn.shape[:2] == (192, 192)  # letterboxed from 96 px
        assert len(stream['bboxes']) > 0
        checked += assert_boxes_drawn(stream, COCO_PALETTE)
    assert checked >= 1


def test_refuses_to_draw_nothing(capsys):
    """``--not-show`` without ``--output-dir`` is an argument error."""
    with pytest.raises(SystemExit):
        browse_dataset.parse_args([TINY_SSDA, '--not-show'])
    assert '--output-dir' in capsys.readouterr().err


def test_plain_config_draws_each_image(coco_shapes, tmp_path):
    """A plain (not paired) mmyolo training config: one file per image of
    the batch, named after the phase, with its boxes."""
    out = str(tmp_path / 'plain')
    records = browse_dataset.main([
        TINY_YOLOV5, '--output-dir', out, '--not-show', '-n', '2',
        '--cfg-options', f'train_dataloader.dataset.data_root={coco_shapes}/'
    ])
    assert [r['kind'] for r in records] == ['train', 'train']
    for record in records:
        stream = record['streams']['train']
        assert stream['file'] == osp.join(
            out, f'{record["index"]:04d}_train.jpg')
        assert osp.isfile(stream['file'])
        assert 'pair_file' not in record
        assert len(stream['bboxes']) > 0
        assert_boxes_drawn(stream, COCO_PALETTE)
