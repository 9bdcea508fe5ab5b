"""Browse a data set as the model sees it, after the full pipeline.

``--phase train`` (the default) draws the batches of the training
dataloader of an SSDA config, composed by its sampler
(``MultiDomainSampler``): for every pair, its real and its fake image with
the pair's boxes and class names, one file per stream, and the two side by
side. A pair must show the same boxes on both images, at the same place:
that is what a paired pipeline (``PairedMosaic``, ``PairedTransform``)
guarantees and what the fake-based losses assume. Target pairs are drawn
with their labels when the data set has any (SSDA does not train on them).
A plain mmyolo config (a training set without ``PairedDataset``) is drawn
image by image.

``--phase val`` / ``test`` draws the evaluation images after the test
pipeline, with the ground truth moved through the resize and letterbox.

Files written to ``--output-dir`` (``N`` is the sample's position, from 0)::

    N_source_real.jpg  N_source_fake.jpg  N_source_pair.jpg   source pair
    N_target_real.jpg  N_target_fake.jpg  N_target_pair.jpg   target pair
    N_<phase>.jpg                                             plain sample

Example:
    python tools/analysis_tools/browse_dataset.py \\
        configs/ssda_yolov5n_fog_shapes.py --output-dir work_dirs/browse \\
        --not-show --show-number 8
"""
import argparse
import copy
import os
import os.path as osp
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmdet.structures.bbox import BaseBoxes
from mmdet.visualization import DetLocalVisualizer
from mmdet.visualization.palette import get_palette
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, set_random_seed

from mmssda.registry import DATASETS
from mmssda.utils import register_all_modules
from mmssda.utils.config_overrides import CfgOptionsError, merge_cfg_options

PHASES = ('train', 'val', 'test')
SIDES = ('real', 'fake')
#: Transform types that load the annotations; moved right after the image
#: loading so that the test pipeline's resizes move the boxes too.
ANNOTATION_LOADERS = ('LoadAnnotations', 'mmdet.LoadAnnotations',
                      'YOLOv5LoadAnnotations')
#: JPEG at quality 95 without chroma subsampling: 4:2:0 blurs the colour
#: of 3-px box outlines into the image.
JPEG_PARAMS = (cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
               cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the samples of a data set after its pipeline: '
        'for an SSDA training set, the real and fake image of every pair '
        'of a batch with the same boxes')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--output-dir',
        '--out-dir',
        dest='output_dir',
        default=None,
        help='folder the images are written to (none without it)')
    parser.add_argument(
        '--not-show',
        action='store_true',
        help='do not open a window per sample')
    parser.add_argument(
        '--show-interval',
        '-i',
        type=float,
        default=3,
        help='seconds each sample is shown')
    parser.add_argument(
        '--phase',
        '-p',
        default='train',
        choices=PHASES,
        help='which dataloader of the config to draw')
    parser.add_argument(
        '--show-number',
        '-n',
        type=int,
        default=8,
        help='number of samples (pairs for an SSDA training set) to draw')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs as for '
        'tools/train.py, e.g. train_dataloader.sampler.seed=0')
    args = parser.parse_args(argv)
    if args.show_number < 1:
        parser.error(f'--show-number must be at least 1, got '
                     f'{args.show_number}')
    if args.not_show and args.output_dir is None:
        parser.error('--not-show without --output-dir draws nothing: give '
                     'a folder to write the images to')
    return args


def build_visualizer(metainfo: dict) -> DetLocalVisualizer:
    """A visualizer with class names and one fixed colour per class.

    Boxes are drawn opaque (``alpha=1``) in the data set's ``palette``, or
    mmdet's seeded ``'random'`` palette when it has none.
    """
    classes = metainfo.get('classes')
    if not classes:
        raise ValueError(
            'The dataset has no metainfo["classes"]: set `metainfo=dict('
            'classes=(...))` in the dataset config to draw class names.')
    palette = metainfo.get('palette') or 'random'
    visualizer = DetLocalVisualizer(name='browse_dataset', alpha=1.0)
    visualizer.dataset_meta = dict(
        classes=tuple(classes),
        palette=get_palette(palette, len(classes)))
    return visualizer


def _boxes_tensor(sample) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(bboxes (N, 4) xyxy, labels (N,))`` of a sample's ground truth."""
    gt = sample.gt_instances
    bboxes = gt.bboxes.tensor if isinstance(gt.bboxes,
                                            BaseBoxes) else gt.bboxes
    return bboxes.float(), gt.labels


def draw_sample(visualizer: DetLocalVisualizer, img: torch.Tensor,
                sample) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a packed image with its ground truth.

    Args:
        visualizer (DetLocalVisualizer): From :func:`build_visualizer`.
        img (Tensor): The packed image, shape (3, H, W), BGR uint8 (what
            ``PackDetInputs`` makes).
        sample (DetDataSample): Its data sample with ``gt_instances``.

    Returns:
        tuple: The drawn image (H, W, 3) BGR uint8, the boxes (N, 4) xyxy
        in its pixels and the labels (N,), as numpy arrays.
    """
    bboxes, labels = _boxes_tensor(sample)
    shown = copy.copy(sample)
    shown.gt_instances = sample.gt_instances.clone()
    shown.gt_instances.bboxes = bboxes
    rgb = np.ascontiguousarray(img.permute(1, 2, 0).numpy()[..., ::-1])
    visualizer.add_datasample(
        'sample', rgb, shown, draw_gt=True, draw_pred=False, show=False)
    drawn = np.ascontiguousarray(visualizer.get_image()[..., ::-1])
    return drawn, bboxes.numpy(), labels.numpy()


def side_by_side(images: Sequence[np.ndarray],
                 titles: Sequence[str],
                 gap: int = 8) -> np.ndarray:
    """Images (BGR) in a row on white, each with its title above it."""
    band = 22
    height = max(img.shape[0] for img in images) + band
    width = sum(img.shape[1] for img in images) + gap * (len(images) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    x = 0
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for img, title in zip(images, titles):
        canvas[band:band + img.shape[0], x:x + img.shape[1]] = img
        while len(title) > 1 and cv2.getTextSize(
                title, font, scale, 1)[0][0] > img.shape[1] - 4:
            title = title[:-2] + '~'  # cut to the image's width
        cv2.putText(canvas, title, (x + 2, band - 7), font, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
        x += img.shape[1] + gap
    return canvas


def _eval_dataset_cfg(dataset_cfg: dict) -> dict:
    """The test pipeline with the annotations loaded right after the image,
    so that resizing and letterboxing move the boxes as well."""
    cfg = copy.deepcopy(dataset_cfg)
    pipeline = list(cfg.get('pipeline') or [])
    loaders = [t for t in pipeline if t.get('type') in ANNOTATION_LOADERS]
    if not loaders:
        raise ValueError(
            'The dataset pipeline has no LoadAnnotations: no boxes to draw '
            f'in {[t.get("type") for t in pipeline]}.')
    rest = [t for t in pipeline if t.get('type') not in ANNOTATION_LOADERS]
    cfg['pipeline'] = rest[:1] + loaders + rest[1:]
    return cfg


def _domain_of(streams: Dict[str, list], j: int) -> Optional[str]:
    """``'source'``/``'target'``: the domain whose streams hold sample
    ``j`` of a multi-stream batch."""
    for domain in ('source', 'target'):
        if streams.get(f'{domain}_real', [None] * (j + 1))[j] is not None:
            return domain
    return None


def train_samples(cfg: Config) -> Tuple[dict, Iterator[Tuple[str, dict]]]:
    """The training dataloader's samples, batch after batch as its sampler
    composes them (in this process, no workers).

    Returns:
        tuple: The dataset's metainfo and an iterator of ``(kind,
        streams)``: for a pair, ``kind`` is its domain and ``streams`` maps
        ``'<domain>_real'`` and ``'<domain>_fake'`` to ``(image,
        data_sample)``; for a plain sample ``('train', {'train': (image,
        data_sample)})``.
    """
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False,
                      pin_memory=False)
    seed = (cfg.get('randomness') or {}).get('seed')
    dataloader = Runner.build_dataloader(loader_cfg, seed=seed)

    def samples():
        for batch in dataloader:
            inputs, data_samples = batch['inputs'], batch['data_samples']
            if not isinstance(inputs, dict):
                for img, sample in zip(inputs, data_samples):
                    yield 'train', {'train': (img, sample)}
                continue
            for j in range(max(len(v) for v in inputs.values())):
                domain = _domain_of(inputs, j)
                if domain is None:
                    raise ValueError(
                        f'Sample {j} of a multi-stream batch has neither a '
                        'source nor a target pair: the training dataset '
                        'must pack pairs with PackPairedDetInputs.')
                yield domain, {
                    f'{domain}_{side}': (inputs[f'{domain}_{side}'][j],
                                         data_samples[f'{domain}_{side}'][j])
                    for side in SIDES
                }

    return dataloader.dataset.metainfo, samples()


def eval_samples(cfg: Config,
                 phase: str) -> Tuple[dict, Iterator[Tuple[str, dict]]]:
    """The ``phase`` (val/test) dataset's metainfo and an iterator of its
    samples after the pipeline, as ``(phase, {phase: (image,
    data_sample)})``."""
    loader = cfg.get(f'{phase}_dataloader')
    if not loader:
        raise ValueError(f'The config has no `{phase}_dataloader`.')
    dataset = DATASETS.build(_eval_dataset_cfg(loader['dataset']))

    def samples():
        for i in range(len(dataset)):
            item = dataset[i]
            yield phase, {phase: (item['inputs'], item['data_samples'])}

    return dataset.metainfo, samples()


def browse(cfg: Config,
           phase: str = 'train',
           output_dir: Optional[str] = None,
           show_number: int = 8,
           show: bool = False,
           show_interval: float = 3) -> List[dict]:
    """Draw ``show_number`` samples of the ``phase`` dataloader.

    Args:
        cfg (Config): The merged config.
        phase (str): ``'train'``, ``'val'`` or ``'test'``.
        output_dir (str, optional): Folder the images are written to.
        show_number (int): Samples (pairs) to draw.
        show (bool): Open a window per sample.
        show_interval (float): Seconds each window is shown.

    Returns:
        list[dict]: Per sample, ``index``, ``kind`` (``'source'``,
        ``'target'`` or the phase) and ``streams``: per stream its image
        ``path`` (the source file), ``file`` (the drawing, None without
        ``output_dir``), ``bboxes`` (N, 4) xyxy in the drawn image's pixels
        and ``labels`` (N,); ``pair_file`` for a pair.
    """
    if phase not in PHASES:
        raise ValueError(f'phase must be one of {PHASES}, got {phase!r}')
    init_default_scope(cfg.get('default_scope', 'mmssda'))
    seed = (cfg.get('randomness') or {}).get('seed')
    if seed is not None:
        set_random_seed(seed)
    metainfo, samples = train_samples(cfg) if phase == 'train' else \
        eval_samples(cfg, phase)
    visualizer = build_visualizer(metainfo)
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
    records = []
    for index, (kind, streams) in enumerate(samples):
        if index >= show_number:
            break
        record = dict(index=index, kind=kind, streams={})
        drawings = []
        for stream, (img, sample) in streams.items():
            with warnings.catch_warnings():
                # boxes that touch the border after mosaic and affine, and
                # their labels, are drawn clipped: nothing to warn about
                warnings.filterwarnings(
                    'ignore', message='Warning: The (bbox|polygon) is out')
                drawn, bboxes, labels = draw_sample(visualizer, img, sample)
            out = osp.join(output_dir, f'{index:04d}_{stream}.jpg') \
                if output_dir else None
            if out:
                cv2.imwrite(out, drawn, JPEG_PARAMS)
            drawings.append(drawn)
            record['streams'][stream] = dict(
                path=sample.metainfo.get('img_path'),
                file=out,
                bboxes=bboxes,
                labels=labels)
        shown = drawings[0]
        if len(drawings) > 1:
            shown = side_by_side(drawings, [
                f'{s}: {osp.basename(str(r["path"]))}'
                for s, r in record['streams'].items()
            ])
            record['pair_file'] = osp.join(
                output_dir, f'{index:04d}_{kind}_pair.jpg') \
                if output_dir else None
            if output_dir:
                cv2.imwrite(record['pair_file'], shown, JPEG_PARAMS)
        if show:
            visualizer.show(
                shown[..., ::-1],
                win_name=f'{index:04d}_{kind}',
                wait_time=show_interval)
        records.append(record)
    if not records:
        raise ValueError(f'The {phase} dataloader gave no sample.')
    return records


def main(argv=None):
    args = parse_args(argv)
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        try:  # as tools/train.py: each override takes effect, or stops
            merge_cfg_options(cfg, args.cfg_options)
        except CfgOptionsError as e:
            raise SystemExit(f'error: {e}') from e
    records = browse(
        cfg,
        phase=args.phase,
        output_dir=args.output_dir,
        show_number=args.show_number,
        show=not args.not_show,
        show_interval=args.show_interval)
    boxes = sum(len(s['bboxes']) for r in records
                for s in r['streams'].values())
    where = f' to {args.output_dir}' if args.output_dir else ''
    print(f'Drew {len(records)} {args.phase} samples ({boxes} boxes)'
          f'{where}')
    return records


if __name__ == '__main__':
    main()
