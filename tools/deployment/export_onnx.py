"""Export an exported student (the plain mmyolo detector written by
``tools/model_converters/extract_detector.py``) to ONNX.

The graph takes ``images``: float32 (B, 3, H, W), BGR, values 0-255, i.e.
images as OpenCV reads them, letterboxed to ``--img-size`` like the test
pipeline (``YOLOv5KeepRatioResize`` + ``LetterResize``, padding 114). The
data preprocessor's channel order and normalisation are part of the graph.

Outputs:
    default: ``boxes`` (B, N, 4), ``[x1, y1, x2, y2]`` in the input's
        pixels, and ``scores`` (B, N, num_classes), the head's decoded
        scores for all N priors (YOLOv5: class x objectness), before any
        threshold or NMS: the head's ``predict_by_feat`` before its
        ``score_thr``, ``nms_pre`` and NMS.
    ``--model-only``: the head's raw outputs per level, ``cls_<i>`` (B,
        A * num_classes, H_i, W_i), ``bbox_<i>`` (B, A * 4, H_i, W_i) and,
        for heads with objectness (YOLOv5), ``obj_<i>`` (B, A, H_i, W_i).

Needs ``onnx`` (``pip install onnx onnxruntime``); uses torch's TorchScript
exporter (``dynamo=False``).

Example:
    python tools/deployment/export_onnx.py work_dirs/x/yolov5s_foggy.py \\
        work_dirs/x/yolov5s_foggy.pth --work-dir work_dirs/x/onnx \\
        --img-size 640 640 --batch-size 1 --opset 11 --device cpu
"""
import argparse
import os
import os.path as osp
import warnings
from typing import List, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import Tensor, nn

from mmssda.utils import register_all_modules


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export an exported student detector to ONNX')
    parser.add_argument(
        'config',
        help='the plain detector config written by '
        'tools/model_converters/extract_detector.py')
    parser.add_argument('checkpoint', help='its checkpoint')
    parser.add_argument(
        '--model-only',
        action='store_true',
        help='export the raw head outputs per level, without decoding')
    parser.add_argument(
        '--work-dir',
        default='./work_dir',
        help='folder the .onnx file is written to')
    parser.add_argument(
        '--img-size',
        nargs='+',
        type=int,
        default=None,
        help='input height and width (one value: square); defaults to the '
        'config\'s img_scale')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='input batch size')
    parser.add_argument(
        '--device', default='cpu', help='device the model is traced on')
    parser.add_argument(
        '--opset', type=int, default=11, help='ONNX opset version')
    args = parser.parse_args(argv)
    if args.img_size is not None:
        if len(args.img_size) == 1:
            args.img_size = args.img_size * 2
        if len(args.img_size) != 2 or min(args.img_size) < 32 or any(
                s % 32 for s in args.img_size):
            parser.error('--img-size takes a height and a width, multiples '
                         f'of the largest stride 32, got {args.img_size}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, got '
                     f'{args.batch_size}')
    return args


class DeployDetector(nn.Module):
    """A single-stage mmyolo detector as one traceable graph.

    Args:
        detector (nn.Module): The detector (``YOLODetector``) in eval mode.
        mean (Sequence[float]): Data preprocessor's mean (3 values).
        std (Sequence[float]): Data preprocessor's std (3 values).
        bgr_to_rgb (bool): Whether the preprocessor flips BGR to RGB.
        decode (bool): Return decoded ``(boxes, scores)`` instead of the raw
            head outputs. Defaults to True.

    Example:
        >>> deploy = DeployDetector(model, mean=[0., 0., 0.],
        ...                         std=[255., 255., 255.], bgr_to_rgb=True)
        >>> boxes, scores = deploy(torch.zeros(1, 3, 640, 640))
        >>> boxes.shape, scores.shape  # 3 * (80^2 + 40^2 + 20^2) priors
        (torch.Size([1, 25200, 4]), torch.Size([1, 25200, 80]))
    """

    def __init__(self,
                 detector: nn.Module,
                 mean: Sequence[float],
                 std: Sequence[float],
                 bgr_to_rgb: bool,
                 decode: bool = True) -> None:
        super().__init__()
        self.detector = detector
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1))
        self.bgr_to_rgb = bgr_to_rgb
        self.decode = decode

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        """Detect in images (B, 3, H, W), BGR 0-255.

        Returns:
            tuple[Tensor]: ``(boxes (B, N, 4), scores (B, N, C))``, or the
            raw outputs, all ``cls`` levels, then ``bbox``, then ``obj``.
        """
        x = images.float()
        if self.bgr_to_rgb:
            x = x[:, [2, 1, 0]]
        x = (x - self.mean) / self.std
        outs = self.detector.bbox_head(self.detector.extract_feat(x))
        if not self.decode:
            return tuple(t for level in outs for t in level)
        return self._decode(*outs)

    def _decode(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                objectnesses: List[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """The decoding of mmyolo's ``YOLOv5Head.predict_by_feat`` (shared
        by the YOLOv8 head), for all priors."""
        head = self.detector.bbox_head
        num_imgs = cls_scores[0].shape[0]
        sizes = [score.shape[2:] for score in cls_scores]
        priors = torch.cat(
            head.prior_generator.grid_priors(
                sizes, dtype=cls_scores[0].dtype,
                device=cls_scores[0].device))
        strides = torch.cat([
            priors.new_full((size.numel() * head.num_base_priors, ), stride)
            for size, stride in zip(sizes, head.featmap_strides)
        ])
        scores = torch.cat([
            s.permute(0, 2, 3, 1).reshape(num_imgs, -1, head.num_classes)
            for s in cls_scores
        ], 1).sigmoid()
        deltas = torch.cat([
            b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4)
            for b in bbox_preds
        ], 1)
        boxes = head.bbox_coder.decode(priors[None], deltas, strides)
        if objectnesses is not None:
            objectness = torch.cat([
                o.permute(0, 2, 3, 1).reshape(num_imgs, -1, 1)
                for o in objectnesses
            ], 1).sigmoid()
            scores = scores * objectness
        return boxes, scores


def output_names(num_outputs: int, num_levels: int,
                 decode: bool) -> List[str]:
    """``['boxes', 'scores']`` or the raw outputs' names by level."""
    if decode:
        return ['boxes', 'scores']
    kinds = ['cls', 'bbox', 'obj'][:num_outputs // num_levels]
    return [f'{kind}_{i}' for kind in kinds for i in range(num_levels)]


def build_deploy_detector(config: str,
                          checkpoint: str,
                          device: str = 'cpu',
                          decode: bool = True) -> Tuple[DeployDetector,
                                                        Config]:
    """Load the plain detector and wrap it in :class:`DeployDetector`.

    Raises:
        FileNotFoundError: A missing config or checkpoint.
        ValueError: An SSDA (teacher-student) config, or a detector that
            is not a single-stage mmyolo detector.
    """
    from mmdet.apis import init_detector
    for path in (config, checkpoint):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} does not exist')
    cfg = Config.fromfile(config)
    if 'SSDADetector' in str(cfg.model.get('type')):
        raise ValueError(
            f'{config} is a teacher-student training config; export its '
            'student first: python tools/model_converters/'
            f'extract_detector.py {config} CHECKPOINT OUT.pth, then pass '
            'OUT.py and OUT.pth here')
    with DefaultScope.overwrite_default_scope('mmyolo'):
        model = init_detector(cfg, checkpoint, device=device)
    head = getattr(model, 'bbox_head', None)
    needed = ('prior_generator', 'bbox_coder', 'featmap_strides')
    if not all(hasattr(head, a) for a in needed):
        raise ValueError(
            f'{config}: model.bbox_head {type(head).__name__} is not an '
            'mmyolo YOLO head (prior_generator, bbox_coder); only '
            'single-stage mmyolo detectors are exported')
    pre = cfg.model.get('data_preprocessor', {})
    deploy = DeployDetector(
        model,
        mean=pre.get('mean', [0., 0., 0.]),
        std=pre.get('std', [1., 1., 1.]),
        bgr_to_rgb=pre.get('bgr_to_rgb', False),
        decode=decode).to(device)
    return deploy.eval(), cfg


def export(deploy: DeployDetector,
           out_file: str,
           img_size: Sequence[int],
           batch_size: int = 1,
           opset: int = 11) -> List[str]:
    """Trace ``deploy`` on a (batch_size, 3, *img_size) input and write the
    checked ONNX model; return its output names."""
    import onnx
    deploy.eval()
    device = deploy.mean.device
    dummy = torch.full((batch_size, 3, *img_size), 114., device=device)
    with torch.no_grad():
        outs = deploy(dummy)
    num_levels = len(deploy.detector.bbox_head.featmap_strides)
    names = output_names(len(outs), num_levels, deploy.decode)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            deploy,
            dummy,
            out_file,
            input_names=['images'],
            output_names=names,
            opset_version=opset,
            dynamo=False)
    onnx.checker.check_model(onnx.load(out_file))
    return names


def _config_img_size(cfg: Config) -> List[int]:
    """``[height, width]`` from the config's ``img_scale`` (width,
    height)."""
    scale = cfg.get('img_scale')
    if not scale:
        raise ValueError('The config has no img_scale: pass --img-size H W')
    return [int(scale[1]), int(scale[0])]


def main(argv=None) -> str:
    args = parse_args(argv)
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ImportError('export_onnx.py needs onnx: pip install onnx '
                          'onnxruntime') from e
    register_all_modules(init_default_scope=False)
    deploy, cfg = build_deploy_detector(
        args.config, args.checkpoint, args.device,
        decode=not args.model_only)
    img_size = args.img_size or _config_img_size(cfg)
    stem = osp.splitext(osp.basename(args.checkpoint))[0]
    out_file = osp.join(args.work_dir, f'{stem}.onnx')
    names = export(deploy, out_file, img_size, args.batch_size, args.opset)
    print(f'Wrote {out_file}: input images ({args.batch_size}, 3, '
          f'{img_size[0]}, {img_size[1]}) BGR 0-255, outputs {names}')
    return out_file


if __name__ == '__main__':
    main()
