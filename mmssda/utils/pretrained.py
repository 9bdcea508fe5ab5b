"""COCO-pretrained starting weights: mmyolo's published checkpoints, and a
check that a ``load_from`` URL can be read before training starts.

MMEngine loads ``load_from='https://...'`` with
:func:`mmengine.runner.load_checkpoint`, which (through mmssda's loader,
:func:`mmssda.utils.checkpoint.load_from_http`) reads the file from torch
hub's checkpoint folder (``<torch hub dir>/checkpoints/<file name>``,
``$TORCH_HOME/hub/checkpoints`` by default) and downloads it there first if
it is missing. Without network that download fails deep inside the runner
with a bare ``URLError``. :func:`prepare_pretrained` does the download up
front (the same file at the same place, so MMEngine's loader then finds it)
and otherwise fails with what to do. The file's content is checked against
the SHA-256 prefix in its name (mmyolo's names carry one), whether it was
just downloaded or already there.
"""
import os.path as osp
from typing import Optional

from .checkpoint import (CheckpointHashError, download_checkpoint,
                         hub_checkpoint_path)

_MMYOLO = 'https://download.openmmlab.com/mmyolo/v0/'
#: mmyolo's COCO checkpoints (``configs/yolov5/metafile.yml`` and
#: ``configs/yolov8/metafile.yml`` of mmyolo 0.6), by model name.
MMYOLO_COCO_CHECKPOINTS = dict(
    yolov5_n=_MMYOLO + 'yolov5/yolov5_n-v61_syncbn_fast_8xb16-300e_coco/'
    'yolov5_n-v61_syncbn_fast_8xb16-300e_coco_20220919_090739-b804c1ad.pth',
    yolov5_s=_MMYOLO + 'yolov5/yolov5_s-v61_syncbn_fast_8xb16-300e_coco/'
    'yolov5_s-v61_syncbn_fast_8xb16-300e_coco_20220918_084700-86e02187.pth',
    yolov5_m=_MMYOLO + 'yolov5/yolov5_m-v61_syncbn_fast_8xb16-300e_coco/'
    'yolov5_m-v61_syncbn_fast_8xb16-300e_coco_20220917_204944-516a710f.pth',
    yolov5_l=_MMYOLO + 'yolov5/yolov5_l-v61_syncbn_fast_8xb16-300e_coco/'
    'yolov5_l-v61_syncbn_fast_8xb16-300e_coco_20220917_031007-096ef0eb.pth',
    yolov5_x=_MMYOLO + 'yolov5/yolov5_x-v61_syncbn_fast_8xb16-300e_coco/'
    'yolov5_x-v61_syncbn_fast_8xb16-300e_coco_20230305_152943-00776a4b.pth',
    yolov8_s=_MMYOLO + 'yolov8/yolov8_s_syncbn_fast_8xb16-500e_coco/'
    'yolov8_s_syncbn_fast_8xb16-500e_coco_20230117_180101-5aa5f0f1.pth',
    # the URLs of mmyolo 0.6.0's and mmdet 3.3.0's metafile.yml
    rtmdet_s=_MMYOLO + 'rtmdet/rtmdet_s_syncbn_fast_8xb32-300e_coco/'
    'rtmdet_s_syncbn_fast_8xb32-300e_coco_20221230_182329-0a8c901a.pth',
    yolox_s=_MMYOLO + 'yolox/yolox_s_fast_8xb8-300e_coco/'
    'yolox_s_fast_8xb8-300e_coco_20230213_142600-2b224d8b.pth',
    yolov6_s=_MMYOLO + 'yolov6/yolov6_s_syncbn_fast_8xb32-400e_coco/'
    'yolov6_s_syncbn_fast_8xb32-400e_coco_20221102_203035-932e1d91.pth',
    yolov7_tiny=_MMYOLO + 'yolov7/yolov7_tiny_syncbn_fast_8x16b-300e_coco/'
    'yolov7_tiny_syncbn_fast_8x16b-300e_coco_20221126_102719-0ee5bbdf.pth',
    ppyoloe_plus_s=_MMYOLO + 'ppyoloe/ppyoloe_plus_s_fast_8xb8-80e_coco/'
    'ppyoloe_plus_s_fast_8xb8-80e_coco_20230101_154052-9fee7619.pth',
    faster_rcnn_r50_fpn='https://download.openmmlab.com/mmdetection/v2.0/'
    'faster_rcnn/faster_rcnn_r50_fpn_1x_coco/'
    'faster_rcnn_r50_fpn_1x_coco_20200130-047c8118.pth',
    retinanet_r50_fpn='https://download.openmmlab.com/mmdetection/v2.0/'
    'retinanet/retinanet_r50_fpn_1x_coco/'
    'retinanet_r50_fpn_1x_coco_20200130-c2398f9e.pth',
    fcos_r50_caffe_fpn_gn_head='https://download.openmmlab.com/mmdetection/'
    'v2.0/fcos/fcos_r50_caffe_fpn_gn-head_1x_coco/'
    'fcos_r50_caffe_fpn_gn-head_1x_coco-821213aa.pth')


class PretrainedWeightsError(RuntimeError):
    """``load_from`` names a URL that is neither cached nor downloadable, or
    whose file does not match the hash in its name."""


def is_url(path: Optional[str]) -> bool:
    """Whether ``path`` is an ``http(s)://`` URL."""
    return isinstance(path, str) and path.startswith(('http://', 'https://'))


def cached_checkpoint_path(url: str) -> str:
    """Where MMEngine's ``load_checkpoint`` looks for ``url``'s file.

    Args:
        url (str): ``http(s)://`` URL of a checkpoint.

    Returns:
        str: ``<torch.hub.get_dir()>/checkpoints/<file name of the URL>``.
    """
    return hub_checkpoint_path(url)


def prepare_pretrained(load_from: Optional[str]) -> Optional[str]:
    """Make a ``load_from`` URL loadable offline, or fail with what to do.

    A local path or None is returned unchanged (MMEngine reports a missing
    local file itself). For a URL whose file is not in torch hub's
    checkpoint folder yet, the file is downloaded there with
    :func:`torch.hub.download_url_to_file` (see
    :func:`mmssda.utils.checkpoint.download_checkpoint`); MMEngine's
    ``load_checkpoint`` then reads it from there without network. A file
    whose name carries a hash prefix (``...-86e02187.pth``) must match it,
    downloaded or found there; a file found there is never replaced or
    deleted.

    Args:
        load_from (str, optional): The config's ``load_from``.

    Returns:
        str | None: ``load_from``, unchanged.

    Raises:
        PretrainedWeightsError: The download failed (the message names the
            URL, the path to put the file at and how to train from
            scratch), or the file does not match the hash in its name (the
            message names the file and both hashes).
    """
    if not is_url(load_from):
        return load_from
    path = cached_checkpoint_path(load_from)
    try:
        download_checkpoint(load_from, progress=True)
    except CheckpointHashError as e:
        raise PretrainedWeightsError(str(e)) from e
    except Exception as e:  # URLError, HTTPError, OSError, ...
        raise PretrainedWeightsError(
            f'Could not download the pretrained weights of `load_from`:\n'
            f'  {load_from}\n  ({type(e).__name__}: {e})\n'
            'Either download that file on a machine with network and put '
            f'it at\n  {path}\n(torch hub\'s checkpoint folder; set '
            'TORCH_HOME to move it), or give its local path: '
            '--cfg-options load_from=/path/to/'
            f'{osp.basename(path)}\nTo train from scratch on purpose: '
            '--cfg-options load_from=None') from e
    return load_from
