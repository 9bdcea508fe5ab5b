import json
import os.path as osp
import shutil
import sys

import cv2
import pytest
from mmengine.config import Config

from tests.test_tools.test_extract_detector import write_ssda_checkpoint
from tests.training_helpers import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
sys.path.insert(0, osp.join(REPO, 'demo'))
import extract_detector  # noqa: E402
import image_demo  # noqa: E402


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    """A tiny SSDA checkpoint's student-EMA exported with
    extract_detector.py, and the images of its data set."""
    tmp_path = tmp_path_factory.mktemp('demo')
    cfg_path, ckpt_path, data_root, _ = write_ssda_checkpoint(tmp_path)
    out = str(tmp_path / 'export' / 'student.pth')
    extract_detector.main([cfg_path, ckpt_path, out])
    config = str(tmp_path / 'export' / 'student.py')
    # the boosted scores pass any threshold: 300 boxes an image would spend
    # seconds on matplotlib's label texts
    cfg = Config.fromfile(config)
    cfg.model.test_cfg.max_per_img = 4
    cfg.dump(config)
    return dict(config=config,
                weights=out, images=osp.join(data_root, 'images'),
                cfg_path=cfg_path)


def check_prediction(pred, num_classes=2):
    assert set(pred) >= {'labels', 'scores', 'bboxes'}
    assert len(pred['labels']) == len(pred['scores']) == len(
        pred['bboxes']) > 0
    assert all(len(box) == 4 for box in pred['bboxes'])
    assert all(0 <= label < num_classes for label in pred['labels'])


def test_folder_of_images(exported, tmp_path):
    """A folder of 2 images: a drawing and a json of boxes per image; the
    checkpoint is found beside the exported config."""
    folder = tmp_path / 'images'
    folder.mkdir()
    for name in ('0000.jpg', '0001.jpg'):
        shutil.copy(osp.join(exported['images'], name), folder / name)
    out_dir = str(tmp_path / 'out')
    preds = image_demo.main([
        str(folder), exported['config'], '--out-dir', out_dir, '--device',
        'cpu', '--pred-score-thr', '0.1'
    ])
    assert len(preds) == 2
    for name in ('0000', '0001'):
        vis = cv2.imread(osp.join(out_dir, 'vis', name + '.jpg'))
        assert vis is not None and vis.shape[:2] == (96, 96)
        original = cv2.imread(osp.join(folder, name + '.jpg'))
        assert cv2.absdiff(vis, original).max() > 100  # boxes drawn
        with open(osp.join(out_dir, 'preds', name + '.json')) as f:
            check_prediction(json.load(f))


def test_video(exported, tmp_path):
    """A 3-frame MJPG video: a video of drawn frames of the same size and
    count, and one json with the boxes of every frame."""
    video = str(tmp_path / 'clip.avi')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 5,
                             (96, 96))
    for name in ('0000.jpg', '0001.jpg', '0002.jpg'):
        writer.write(cv2.imread(osp.join(exported['images'], name)))
    writer.release()
    out_dir = str(tmp_path / 'out')
    image_demo.main([
        video, exported['config'], '--weights', exported['weights'],
        '--out-dir', out_dir, '--device', 'cpu', '--batch-size', '2'
    ])
    with open(osp.join(out_dir, 'preds', 'clip.json')) as f:
        result = json.load(f)
    assert result['fps'] == pytest.approx(5)
    assert [frame['frame'] for frame in result['frames']] == [0, 1, 2]
    for frame in result['frames']:
        check_prediction(frame)
        assert len(frame['bboxes']) <= 4
    drawn = cv2.VideoCapture(osp.join(out_dir, 'vis', 'clip.avi'))
    assert drawn.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    ok, frame = drawn.read()
    drawn.release()
    assert ok and frame.shape[:2] == (96, 96)


def test_refuses_what_it_cannot_run(exported, tmp_path):
    """An SSDA training config, a config without checkpoint and a missing
    input are refused, each naming the file."""
    img = osp.join(exported['images'], '0000.jpg')
    with pytest.raises(ValueError, match='extract_detector.py'):
        image_demo.main([img, exported['cfg_path']])
    lonely = str(tmp_path / 'lonely.py')
    shutil.copy(exported['config'], lonely)
    with pytest.raises(FileNotFoundError, match='lonely.pth'):
        image_demo.main([img, lonely])
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        image_demo.main([str(tmp_path / 'missing.jpg'), exported['config']])
