import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmyolo.engine.optimizers import YOLOv5OptimizerConstructor

from mmssda.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StudentOptimizerConstructor(YOLOv5OptimizerConstructor):
    """YOLOv5's optimizer over the student of a teacher-student model.

    Builds :class:`YOLOv5OptimizerConstructor`'s three parameter groups
    (weights with decay, norm weights and biases without) from
    ``model.student`` alone, so the teacher, updated only by
    :class:`SSDAMeanTeacherHook`, is never in the optimizer. Weight decay is
    scaled by ``batch_size_per_gpu * world_size * accumulate / 64`` as in
    YOLOv5. A model without a student (a plain detector) is used whole.

    The norm-weight and bias groups get no weight decay whatever the
    optimizer: the parent leaves them at the optimizer's default, which is 0
    for SGD but 0.01 for AdamW (e.g. RTMDet's optimizer).

    Args:
        optim_wrapper_cfg (dict): The optimizer wrapper config, with
            ``optimizer`` (which may hold ``batch_size_per_gpu``).
        paramwise_cfg (dict, optional): ``dict(base_total_batch_size=64)``
            if None. Defaults to None.

    Example:
        >>> optim_wrapper = dict(
        ...     type='OptimWrapper',
        ...     optimizer=dict(type='SGD', lr=0.01, momentum=0.937,
        ...                    weight_decay=0.0005, nesterov=True,
        ...                    batch_size_per_gpu=16),
        ...     constructor='StudentOptimizerConstructor')
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        """Build the optimizer wrapper for ``model.student``.

        Args:
            model (nn.Module): The (possibly DDP-wrapped) model.

        Returns:
            :obj:`OptimWrapper`: The optimizer wrapper.
        """
        if is_model_wrapper(model):
            model = model.module
        optim_wrapper = super().__call__(getattr(model, 'student', model))
        for group in optim_wrapper.optimizer.param_groups[1:]:
            group['weight_decay'] = 0.
        return optim_wrapper
