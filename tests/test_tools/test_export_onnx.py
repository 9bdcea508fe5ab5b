import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict

from tests.test_tools.test_extract_detector import write_ssda_checkpoint
from tests.training_helpers import REPO

onnx = pytest.importorskip('onnx', reason='export_onnx.py needs onnx '
                           '(pip install onnx onnxruntime)')
ort = pytest.importorskip('onnxruntime', reason='the exported graph is run '
                          'with onnxruntime (pip install onnxruntime)')
sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
sys.path.insert(0, osp.join(REPO, 'tools', 'deployment'))
import export_onnx  # noqa: E402
import extract_detector  # noqa: E402


@pytest.fixture(scope='module')
def student(tmp_path_factory):
    """The student-EMA of a tiny SSDA checkpoint (64 px, 2 classes),
    exported with extract_detector.py."""
    tmp_path = tmp_path_factory.mktemp('onnx')
    cfg_path, ckpt_path, _, _ = write_ssda_checkpoint(tmp_path)
    out = str(tmp_path / 'export' / 'student.pth')
    extract_detector.main([cfg_path, ckpt_path, out])
    return str(tmp_path / 'export' / 'student.py'), out


def images(batch_size=2, size=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch_size, 3, size, size)).astype(
        np.float32)


def run_onnx(path, inputs):
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['images']
    names = [o.name for o in session.get_outputs()]
    return names, session.run(None, {'images': inputs})


def test_decoded_outputs_match_torch_and_the_head(student, tmp_path):
    """The exported graph's boxes and scores equal torch's, and torch's are
    the head's own decoding (``predict_by_feat`` without threshold and
    NMS), preprocessing included."""
    config, weights = student
    out_file = export_onnx.main([
        config, weights, '--work-dir', str(tmp_path), '--img-size', '64',
        '--batch-size', '2', '--opset', '11'
    ])
    assert out_file == str(tmp_path / 'student.onnx')
    inputs = images()
    names, (boxes, scores) = run_onnx(out_file, inputs)
    assert names == ['boxes', 'scores']
    num_priors = 3 * (8 * 8 + 4 * 4 + 2 * 2)
    assert boxes.shape == (2, num_priors, 4)
    assert scores.shape == (2, num_priors, 2)

    deploy, _ = export_onnx.build_deploy_detector(config, weights)
    with torch.no_grad():
        ref_boxes, ref_scores = deploy(torch.from_numpy(inputs))
    np.testing.assert_allclose(boxes, ref_boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose(scores, ref_scores.numpy(), atol=1e-5)

    # the head's decoding of the same images, preprocessed by the model's
    # data preprocessor (BGR -> RGB, / 255)
    model = deploy.detector
    data = model.data_preprocessor(
        dict(inputs=list(torch.from_numpy(inputs).to(torch.uint8))))
    with torch.no_grad():
        outs = model.bbox_head(model.extract_feat(data['inputs']))
        cfg = ConfigDict(multi_label=False, score_thr=0., nms_pre=10**6)
        metas = [dict(ori_shape=(64, 64), scale_factor=(1., 1.))] * 2
        preds = model.bbox_head.predict_by_feat(
            *outs, batch_img_metas=metas, cfg=cfg, rescale=False,
            with_nms=False)
    for i, pred in enumerate(preds):
        top, label = scores[i].max(1), scores[i].argmax(1)
        order = np.argsort(-top, kind='stable')
        np.testing.assert_allclose(top[order], pred.scores.numpy(),
                                   atol=1e-5)
        best = order[0]
        assert label[best] == int(pred.labels[0])
        np.testing.assert_allclose(
            boxes[i, best].clip(0, 64), pred.bboxes[0].numpy(), atol=1e-3)


def test_model_only_exports_raw_head_outputs(student, tmp_path):
    """``--model-only``: one output per head output and level (cls, bbox,
    obj for YOLOv5), equal to torch's."""
    config, weights = student
    out_file = export_onnx.main([
        config, weights, '--work-dir', str(tmp_path), '--model-only',
        '--img-size', '64', '64'
    ])
    inputs = images(batch_size=1, seed=1)
    names, outs = run_onnx(out_file, inputs)
    assert names == [f'{kind}_{i}' for kind in ('cls', 'bbox', 'obj')
                     for i in range(3)]
    assert [o.shape for o in outs[:3]] == [(1, 6, 8, 8), (1, 6, 4, 4),
                                           (1, 6, 2, 2)]
    deploy, _ = export_onnx.build_deploy_detector(
        config, weights, decode=False)
    with torch.no_grad():
        ref = deploy(torch.from_numpy(inputs))
    for out, expected in zip(outs, ref):
        np.testing.assert_allclose(out, expected.numpy(), atol=1e-4)


def test_refusals_name_the_problem(student, tmp_path, capsys):
    """A size that is not a multiple of the stride and an SSDA training
    config are refused."""
    config, weights = student
    with pytest.raises(SystemExit):
        export_onnx.parse_args([config, weights, '--img-size', '50'])
    assert '--img-size' in capsys.readouterr().err
    ssda = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes.py')
    with pytest.raises(ValueError, match='extract_detector.py'):
        export_onnx.build_deploy_detector(ssda, weights)


def test_yolov8_head_exports_and_decodes(tmp_path):
    """The YOLOv8 head (no objectness, distance boxes) of
    configs/ssda_yolov8s_city2foggy.py, shrunk: onnxruntime equals torch,
    and torch's decoding equals the head's."""
    from mmengine.registry import DefaultScope
    from mmyolo.registry import MODELS

    from tests.test_models.utils import yolov8_tiny_cfg
    with DefaultScope.overwrite_default_scope('mmyolo'):
        cfg = yolov8_tiny_cfg()
        model = MODELS.build(cfg).eval()
        pre = cfg.data_preprocessor
        deploy = export_onnx.DeployDetector(model, pre.mean, pre.std,
                                            pre.bgr_to_rgb).eval()
        out_file = str(tmp_path / 'yolov8.onnx')
        assert export_onnx.export(deploy, out_file, (64, 64)) == [
            'boxes', 'scores'
        ]
        inputs = images(batch_size=1, seed=2)
        _, (boxes, scores) = run_onnx(out_file, inputs)
        assert boxes.shape == (1, 8 * 8 + 4 * 4 + 2 * 2, 4)
        with torch.no_grad():
            ref_boxes, ref_scores = deploy(torch.from_numpy(inputs))
            np.testing.assert_allclose(boxes, ref_boxes.numpy(), atol=1e-3)
            np.testing.assert_allclose(scores, ref_scores.numpy(),
                                       atol=1e-5)
            x = torch.from_numpy(inputs)[:, [2, 1, 0]] / 255.
            outs = model.bbox_head(model.extract_feat(x))
            pred = model.bbox_head.predict_by_feat(
                *outs,
                batch_img_metas=[dict(ori_shape=(64, 64),
                                      scale_factor=(1., 1.))],
                cfg=ConfigDict(multi_label=False, score_thr=0.,
                               nms_pre=10**6),
                rescale=False,
                with_nms=False)[0]
    top = scores[0].max(1)
    order = np.argsort(-top, kind='stable')
    np.testing.assert_allclose(top[order], pred.scores.numpy(), atol=1e-5)
    np.testing.assert_allclose(boxes[0, order[0]].clip(0, 64),
                               pred.bboxes[0].numpy(), atol=1e-3)
