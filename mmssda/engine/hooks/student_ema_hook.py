import copy
import inspect
import logging
from typing import Optional

from mmengine.hooks import EMAHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import load_state_dict

from mmssda.engine.optimizers import optimizer_stepped
from mmssda.registry import HOOKS, MODELS
from mmssda.utils.config_checks import check_option_keys


@HOOKS.register_module()
class StudentEMAHook(EMAHook):
    """YOLOv5's ramped EMA of the student of a teacher-student model.

    mmyolo's base configs average the whole model with an ``EMAHook``; on a
    teacher-student wrapper that would also average the teacher. This hook
    averages ``model.student`` only, after optimizer steps only (gradient
    accumulation iterations do not count), and swaps the average into the
    student for validation, test and checkpoints exactly like
    :class:`mmengine.hooks.EMAHook`. Under
    :class:`SharedBatchTeacherStudentValLoop` (or mmdet's
    ``TeacherStudentValLoop``) the ``student/...`` metrics are
    therefore the student-EMA's, and a saved checkpoint's ``student.*``
    weights are the EMA (the raw student is in ``ema_state_dict``).

    Args:
        ema_type (str): Averaged model type. Defaults to
            ``'ForeachExpMomentumEMA'``: mmyolo's ``ExpMomentumEMA`` (decay
            ``1 - momentum`` ramped with ``gamma``: YOLOv5's
            ``0.9999 * (1 - exp(-updates / 2000))``) updated with one fused
            ``torch._foreach_lerp_`` per step.
        momentum (float): Defaults to 0.0001.
        gamma (int): Ramp length in updates. Defaults to 2000.
        update_buffers (bool): Average buffers too. Defaults to True.
        strict_load (bool): Strict loading of the EMA state. Defaults to
            False.
        **kwargs: Other arguments of :class:`mmengine.hooks.EMAHook`
            (``begin_iter``, ...) and of the averaged model.

    Example:
        >>> custom_hooks = [
        ...     dict(type='StudentEMAHook', momentum=0.0001, gamma=2000,
        ...          update_buffers=True, priority=49)]
    """

    def __init__(self,
                 ema_type: str = 'ForeachExpMomentumEMA',
                 momentum: float = 0.0001,
                 gamma: int = 2000,
                 update_buffers: bool = True,
                 strict_load: bool = False,
                 **kwargs) -> None:
        self._check_kwargs(ema_type, kwargs)
        super().__init__(
            ema_type=ema_type,
            momentum=momentum,
            gamma=gamma,
            update_buffers=update_buffers,
            strict_load=strict_load,
            **kwargs)

    @staticmethod
    def _check_kwargs(ema_type: str, kwargs: dict) -> None:
        """Refuse a key that neither :class:`EMAHook` nor the averaged
        model takes, now (the averaged model is built in ``before_run``,
        after the whole runner)."""
        ema_cls = MODELS.get(ema_type)
        if ema_cls is None:
            return  # the build names the unknown type
        params = inspect.signature(ema_cls.__init__).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        hook_params = inspect.signature(EMAHook.__init__).parameters
        valid = {*params, *hook_params} - {'self', 'model', 'kwargs'}
        check_option_keys(kwargs, valid, 'StudentEMAHook')

    def before_run(self, runner: Runner) -> None:
        """Create the EMA copy of ``model.student``."""
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if not hasattr(model, 'student'):
            raise TypeError('StudentEMAHook needs a model with a `student`, '
                            f'got {type(model)}')
        self.src_model = model.student
        self.ema_model = self._build_ema(self.src_model)

    def _build_ema(self, model):
        """Build the averaged model of ``model``."""
        return MODELS.build(self.ema_cfg, default_args=dict(model=model))

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Update the EMA after iterations that stepped the optimizer
        (not after accumulation-only or skipped non-finite steps)."""
        if optimizer_stepped(runner.optim_wrapper):
            super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Resume the EMA, or start it from the loaded student weights.

        A teacher-student checkpoint's student (``student.*`` keys) seeds the
        EMA; a plain detector checkpoint (no prefix) is used as is.
        """
        if 'ema_state_dict' in checkpoint and runner._resume:
            self._swap_ema_state_dict(checkpoint)
            self.ema_model.load_state_dict(
                checkpoint['ema_state_dict'], strict=self.strict_load)
            return
        if runner._resume:
            print_log(
                'There is no `ema_state_dict` in checkpoint. '
                '`StudentEMAHook` starts the EMA from the student weights.',
                'current', logging.WARNING)
        load_state_dict(
            self.ema_model.module,
            self._student_state_dict(checkpoint['state_dict']),
            strict=self.strict_load)

    @staticmethod
    def _student_state_dict(state_dict: dict) -> dict:
        """The student's entries without prefix, or a plain state dict."""
        prefix = 'student.'
        student = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
        return copy.deepcopy(student or state_dict)

    def _swap_ema_state_dict(self, checkpoint: dict) -> None:
        """Swap ``ema_state_dict['module.k']`` and ``state_dict['student.k']``.
        """
        model_state = checkpoint['state_dict']
        ema_state = checkpoint['ema_state_dict']
        for k in ema_state:
            if k.startswith('module.'):
                student_key = 'student.' + k[len('module.'):]
                ema_state[k], model_state[student_key] = \
                    model_state[student_key], ema_state[k]
