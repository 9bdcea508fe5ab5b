import cv2
import numpy as np
from mmdet.structures.bbox import autocast_box_type
from mmyolo.datasets.transforms import \
    YOLOv5RandomAffine as MMYOLOYOLOv5RandomAffine

from mmssda.registry import TRANSFORMS


@TRANSFORMS.register_module()
class YOLOv5RandomAffine(MMYOLOYOLOv5RandomAffine):
    """MMYOLO's ``YOLOv5RandomAffine`` with the image warped by
    ``cv2.warpAffine``.

    The matrices of the parent are affine (rotation, scaling, shear and
    translation; it has no perspective term), yet it warps with
    ``cv2.warpPerspective``. ``cv2.warpAffine`` gives the same image (a few
    pixels differ by a grey level or two, where the two round the bilinear
    interpolation differently) in about half the time with OpenCV 4.x:
    1.07 ms against 2.09 ms for the 1280x1280 mosaic to 640x640 of the
    YOLOv5 recipe, one thread (OpenCV 5.0's ``warpAffine`` has no such fast
    path: 2.2 ms). The random draws, the box projection, clipping and
    filtering are the parent's, so :class:`PairedTransform` shares the
    draws as before.
    A matrix that is not affine (a subclass adding perspective) and samples
    with ``gt_masks`` go through the parent unchanged.

    Registered in mmssda's scope under the parent's name, so a config with
    ``default_scope='mmssda'`` gets it for ``type='YOLOv5RandomAffine'``;
    ``type='mmyolo.YOLOv5RandomAffine'`` still names the parent.

    Required Keys:

    - img
    - gt_bboxes (BaseBoxes[torch.float32]) (optional)
    - gt_bboxes_labels (np.int64) (optional)
    - gt_ignore_flags (bool) (optional)

    Modified Keys:

    - img
    - img_shape
    - gt_bboxes (optional)
    - gt_bboxes_labels (optional)
    - gt_ignore_flags (optional)

    Args:
        **kwargs: The parent's arguments (``max_rotate_degree``,
            ``max_translate_ratio``, ``scaling_ratio_range``,
            ``max_shear_degree``, ``border``, ``border_val``, ...).

    Example:
        >>> dict(type='YOLOv5RandomAffine', max_rotate_degree=0.0,
        ...      max_shear_degree=0.0, scaling_ratio_range=(0.5, 1.5),
        ...      border=(-320, -320), border_val=(114, 114, 114))
    """

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        """Warp the image and its boxes with one random affine matrix.

        Args:
            results (dict): The result dict.

        Returns:
            dict: The result dict.
        """
        if 'gt_masks' in results:
            return super().transform(results)
        img = results['img']
        # self.border is (w, h)
        height = img.shape[0] + self.border[1] * 2
        width = img.shape[1] + self.border[0] * 2
        center_matrix = np.eye(3, dtype=np.float32)
        center_matrix[0, 2] = -img.shape[1] / 2
        center_matrix[1, 2] = -img.shape[0] / 2
        warp_matrix, scaling_ratio = self._get_random_homography_matrix(
            height, width)
        warp_matrix = warp_matrix @ center_matrix
        if np.array_equal(warp_matrix[2], (0., 0., 1.)):
            img = cv2.warpAffine(
                img,
                warp_matrix[:2],
                dsize=(width, height),
                borderValue=self.border_val)
        else:
            img = cv2.warpPerspective(
                img,
                warp_matrix,
                dsize=(width, height),
                borderValue=self.border_val)
        results['img'] = img
        results['img_shape'] = img.shape

        bboxes = results.get('gt_bboxes')
        if bboxes is None or not len(bboxes):
            return results
        orig_bboxes = bboxes.clone()
        orig_bboxes.rescale_([scaling_ratio, scaling_ratio])
        bboxes.project_(warp_matrix)
        if self.bbox_clip_border:
            bboxes.clip_([height, width])
        # a numpy index: a one-element tensor index would be read as a scalar
        valid = self.filter_gt_bboxes(orig_bboxes, bboxes).numpy()
        results['gt_bboxes'] = bboxes[valid]
        for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
            if key in results:
                results[key] = results[key][valid]
        return results
