"""Detect objects in images, a folder of images or a video with an exported
student (the plain mmyolo detector written by
``tools/model_converters/extract_detector.py``).

Images run through mmdet's ``DetInferencer`` (scope ``mmyolo``) and are
written as mmdet's ``demo/image_demo.py`` writes them::

    OUT_DIR/vis/<image name>      the image with the predicted boxes
    OUT_DIR/preds/<image stem>.json   {"labels", "scores", "bboxes"}

A video (``.mp4``, ``.avi``, ...) is read frame by frame with OpenCV and
written as ``OUT_DIR/vis/<video name>`` (same container, same frame rate)
and ``OUT_DIR/preds/<video stem>.json``: ``{"video", "fps", "frames":
[{"frame", "labels", "scores", "bboxes"}, ...]}``. Boxes are ``[x1, y1,
x2, y2]`` in the input's pixels; the json holds every prediction, the
drawings those scoring at least ``--pred-score-thr``.

Example:
    python tools/model_converters/extract_detector.py \\
        configs/ssda_yolov5s_city2foggy.py work_dirs/x/best.pth \\
        work_dirs/x/yolov5s_foggy.pth
    python demo/image_demo.py data/foggy_samples/ \\
        work_dirs/x/yolov5s_foggy.py --device cpu --out-dir outputs
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import cv2
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmssda.utils import register_all_modules

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mov', '.mkv', '.m4v', '.mpg', '.mpeg',
                  '.wmv')
#: FourCC of the written video by container; anything else is written as
#: mp4v in the input's container.
FOURCC = {'.avi': 'MJPG', '.mp4': 'mp4v', '.m4v': 'mp4v', '.mov': 'mp4v'}
PALETTES = ('coco', 'voc', 'citys', 'random', 'none')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Detect objects in images, a folder of images or a '
        'video with an exported student detector')
    parser.add_argument(
        'inputs', type=str, help='an image, a folder of images or a video')
    parser.add_argument(
        'model',
        type=str,
        help='the plain detector config written by '
        'tools/model_converters/extract_detector.py')
    parser.add_argument(
        '--weights',
        default=None,
        help='checkpoint; defaults to the .pth beside the config (what '
        'extract_detector.py writes)')
    parser.add_argument(
        '--out-dir',
        type=str,
        default='outputs',
        help='output folder of the drawings (vis/) and predictions '
        '(preds/)')
    parser.add_argument(
        '--device',
        default=None,
        help='device for inference; defaults to cuda:0 when CUDA is '
        'available, else cpu')
    parser.add_argument(
        '--pred-score-thr',
        type=float,
        default=0.3,
        help='score threshold of the drawn boxes')
    parser.add_argument(
        '--batch-size', type=int, default=1, help='inference batch size')
    parser.add_argument(
        '--show', action='store_true', help='show each result in a window')
    parser.add_argument(
        '--no-save-vis',
        action='store_true',
        help='do not write the drawings')
    parser.add_argument(
        '--no-save-pred',
        action='store_true',
        help='do not write the predictions (json)')
    parser.add_argument(
        '--print-result',
        action='store_true',
        help='print the predictions')
    parser.add_argument(
        '--palette',
        default='none',
        choices=PALETTES,
        help='colours of the boxes; none: the checkpoint\'s dataset palette')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, got '
                     f'{args.batch_size}')
    return args


def resolve_model(model: str, weights: Optional[str]) -> str:
    """The checkpoint of the plain detector config ``model``.

    Raises:
        FileNotFoundError: A missing config or checkpoint.
        ValueError: ``model`` is an SSDA (teacher-student) training config.
    """
    if not osp.isfile(model):
        raise FileNotFoundError(f'Model config {model} does not exist')
    model_type = Config.fromfile(model).model.get('type')
    if model_type == 'SSDADetector' or str(model_type).endswith(
            '.SSDADetector'):
        raise ValueError(
            f'{model} is a teacher-student training config; export its '
            'student first: python tools/model_converters/'
            f'extract_detector.py {model} CHECKPOINT OUT.pth, then pass '
            'OUT.py here')
    if weights is None:
        weights = osp.splitext(model)[0] + '.pth'
        if not osp.isfile(weights):
            raise FileNotFoundError(
                f'No --weights given and no checkpoint {weights} beside the '
                f'config {model}')
    elif not osp.isfile(weights):
        raise FileNotFoundError(f'Checkpoint {weights} does not exist')
    return weights


def is_video(path: str) -> bool:
    return osp.isfile(path) and path.lower().endswith(VIDEO_SUFFIXES)


def run_video(inferencer,
              path: str,
              out_dir: str,
              batch_size: int = 1,
              pred_score_thr: float = 0.3,
              show: bool = False,
              save_vis: bool = True,
              save_pred: bool = True,
              print_result: bool = False) -> Dict:
    """Detect objects in each frame of the video ``path``.

    Args:
        inferencer (DetInferencer): The detector.
        path (str): The video file.
        out_dir (str): Folder of ``vis/`` and ``preds/``.
        batch_size (int): Frames per forward pass.
        pred_score_thr (float): Score threshold of the drawn boxes.
        show (bool): Show each drawn frame.
        save_vis (bool): Write the video with the boxes drawn.
        save_pred (bool): Write the predictions (json).
        print_result (bool): Print each frame's predictions.

    Returns:
        dict: ``video``, ``fps`` and ``frames``: per frame its index and
        its predictions (``labels``, ``scores``, ``bboxes``).
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f'OpenCV cannot read the video {path}')
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.
    name = osp.basename(path)
    writer = None
    frames, results = [], dict(video=path, fps=fps, frames=[])

    def flush():
        out = inferencer(frames, batch_size=batch_size,
                         return_datasamples=True, no_save_vis=True,
                         no_save_pred=True)
        nonlocal writer
        for frame, sample in zip(frames, out['predictions']):
            pred = inferencer.pred2dict(sample)
            pred['frame'] = len(results['frames'])
            results['frames'].append(pred)
            if print_result:
                print(pred)
            if not (save_vis or show):
                continue
            inferencer.visualizer.add_datasample(
                name, frame[..., ::-1], sample, draw_gt=False,
                pred_score_thr=pred_score_thr, show=show,
                wait_time=1. / fps)  # a window plays at the video's rate
            drawn = inferencer.visualizer.get_image()[..., ::-1]
            if save_vis:
                if writer is None:
                    writer = _video_writer(
                        osp.join(out_dir, 'vis', name), fps,
                        drawn.shape[1], drawn.shape[0])
                writer.write(drawn.copy())
        frames.clear()

    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
            if len(frames) == batch_size:
                flush()
        if frames:
            flush()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if not results['frames']:
        raise ValueError(f'The video {path} has no frame OpenCV can read')
    if save_pred:
        pred_dir = osp.join(out_dir, 'preds')
        os.makedirs(pred_dir, exist_ok=True)
        with open(osp.join(pred_dir,
                           osp.splitext(name)[0] + '.json'), 'w') as f:
            json.dump(results, f)
    return results


def _video_writer(path: str, fps: float, width: int,
                  height: int) -> cv2.VideoWriter:
    os.makedirs(osp.dirname(path), exist_ok=True)
    suffix = osp.splitext(path)[1].lower()
    writer = cv2.VideoWriter(
        path, cv2.VideoWriter_fourcc(*FOURCC.get(suffix, 'mp4v')), fps,
        (width, height))
    if not writer.isOpened():
        raise ValueError(f'OpenCV cannot write the video {path}')
    return writer


def main(argv=None) -> List[Dict]:
    """Run the demo; return the predictions (a list of dicts for images,
    one video result for a video)."""
    from mmdet.apis import DetInferencer
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    if not osp.exists(args.inputs):
        raise FileNotFoundError(f'Input {args.inputs} does not exist')
    weights = resolve_model(args.model, args.weights)
    device = args.device or ('cuda:0'
                             if torch.cuda.is_available() else 'cpu')
    with DefaultScope.overwrite_default_scope('mmyolo'):
        inferencer = DetInferencer(
            model=args.model,
            weights=weights,
            device=device,
            scope='mmyolo',
            palette=args.palette,
            show_progress=False)
        if is_video(args.inputs):
            result = run_video(
                inferencer,
                args.inputs,
                args.out_dir,
                batch_size=args.batch_size,
                pred_score_thr=args.pred_score_thr,
                show=args.show,
                save_vis=not args.no_save_vis,
                save_pred=not args.no_save_pred,
                print_result=args.print_result)
            predictions = [result]
        else:
            predictions = inferencer(
                args.inputs,
                batch_size=args.batch_size,
                show=args.show,
                no_save_vis=args.no_save_vis,
                no_save_pred=args.no_save_pred,
                pred_score_thr=args.pred_score_thr,
                print_result=args.print_result,
                out_dir=args.out_dir)['predictions']
    if not (args.no_save_vis and args.no_save_pred):
        print(f'Results have been saved at {args.out_dir}')
    return predictions


if __name__ == '__main__':
    main()
