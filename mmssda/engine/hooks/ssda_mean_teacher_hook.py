from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.dist import all_reduce_params, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from mmssda.engine.optimizers import optimizer_stepped
from mmssda.registry import HOOKS


@HOOKS.register_module()
class SSDAMeanTeacherHook(Hook):
    """Mean-teacher update of :class:`SSDADetector`, per optimizer step.

    After every ``interval``-th optimizer step the teacher moves towards the
    student: ``teacher = (1 - momentum) * teacher + momentum * student``
    (SSDA-YOLO: ``momentum=0.01``, i.e. decay 0.99). With gradient
    accumulation (``optim_wrapper.accumulative_counts > 1``) iterations that
    only accumulate gradients are not steps and do not count.

    Unlike the reference implementation, floating-point buffers (BatchNorm
    running mean/var) are averaged too by default; integer buffers
    (``num_batches_tracked``) are copied from the student, never averaged.

    During the first ``burn_in_iters`` iterations the detector trains on
    source data only (the hook sets ``model.distill_active = False``); at
    iteration ``burn_in_iters`` the teacher is re-initialised from the
    student and distillation starts. The flag is re-derived from
    ``runner.iter`` in ``before_train``, so resuming restores it.

    Under DDP every rank holds the same student parameters after the
    gradient all-reduce and step, but not the same buffers: MMEngine's DDP
    wrapper does not broadcast buffers (``broadcast_buffers=False``), so
    without SyncBN each rank's BatchNorm running statistics follow its own
    batches. After every optimizer step (burn-in included) the hook therefore
    replaces the student's floating-point buffers by their mean over the
    ranks (one ``all_reduce`` of the BN statistics, about 0.3% of the
    gradient all-reduce's size for YOLOv5) before the teacher averages them.
    Teacher, student and student-EMA buffers stay identical on all ranks,
    and the student's running statistics are those of all ranks' batches
    rather than of rank 0's alone (which a broadcast would keep, at the same
    cost). With SyncBN the buffers are equal already and stay equal. The
    hook runs before :class:`StudentEMAHook` (priority 48 < 49) so that the
    EMA averages the synchronised buffers too.

    A model whose teacher keeps its own BatchNorm statistics
    (``model.teacher_keeps_bn_stats``, :class:`SSDADetector` with
    ``semi_train_cfg.teacher_bn_stats='target'``: the teacher estimates them
    on the target images it labels) gets its teacher's BatchNorm buffers
    copied from the student only when the teacher is (re)initialised, never
    averaged; under DDP they are averaged over the ranks after every step.

    Before every iteration the hook sets ``model.distill_steps``, the
    optimizer steps taken since distillation started (saved and resumed),
    from which :class:`SSDADetector` schedules its distillation weight
    (``semi_train_cfg.distill_warmup_iters``).

    Args:
        momentum (float): Weight of the student in the update, in (0, 1).
            Defaults to 0.01.
        interval (int): Update every ``interval`` optimizer steps.
            Defaults to 1.
        update_buffers (bool): Average floating-point buffers as well.
            If False, the teacher keeps its buffers. Defaults to True.
        burn_in_iters (int): Source-only iterations before distillation.
            Defaults to 0.

    Example:
        >>> custom_hooks = [
        ...     dict(type='SSDAMeanTeacherHook', momentum=0.01, interval=1,
        ...          update_buffers=True, burn_in_iters=0)]
    """

    # before StudentEMAHook (49): the EMA reads the rank-averaged buffers
    priority = 48

    def __init__(self,
                 momentum: float = 0.01,
                 interval: int = 1,
                 update_buffers: bool = True,
                 burn_in_iters: int = 0) -> None:
        if not 0 < momentum < 1:
            raise ValueError(f'momentum must be in (0, 1), got {momentum}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        if burn_in_iters < 0:
            raise ValueError(
                f'burn_in_iters must be >= 0, got {burn_in_iters}')
        self.momentum = momentum
        self.interval = interval
        self.update_buffers = update_buffers
        self.burn_in_iters = burn_in_iters
        #: Optimizer steps taken since distillation started.
        self.num_steps = 0

    @staticmethod
    def _get_model(runner: Runner) -> nn.Module:
        """The unwrapped teacher-student model."""
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if not (hasattr(model, 'teacher') and hasattr(model, 'student')):
            raise TypeError('SSDAMeanTeacherHook needs a model with '
                            f'`teacher` and `student`, got {type(model)}')
        return model

    def before_train(self, runner: Runner) -> None:
        """Start the teacher equal to the student; set the burn-in flag."""
        model = self._get_model(runner)
        if runner.iter == 0:
            self.sync_student_buffers(model)
            self.momentum_update(model, 1.)
        model.distill_active = runner.iter >= self.burn_in_iters

    def before_train_iter(self,
                          runner: Runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """End the burn-in (teacher <- student, distillation on); tell the
        model its steps since distillation started."""
        if self.burn_in_iters and runner.iter == self.burn_in_iters:
            self.end_burn_in(runner)
        self._get_model(runner).distill_steps = self.num_steps

    def end_burn_in(self, runner: Runner) -> None:
        """Teacher <- student, distillation on, step counter reset."""
        model = self._get_model(runner)
        self.sync_student_buffers(model)
        self.momentum_update(model, 1.)
        model.distill_active = True
        self.num_steps = 0
        print_log(
            f'Burn-in ended at iteration {runner.iter}: teacher '
            're-initialised from the student, distillation on.', 'current')

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Average the student's buffers over the ranks after every
        optimizer step; update the teacher after every ``interval``-th."""
        if not optimizer_stepped(runner.optim_wrapper):
            return
        model = self._get_model(runner)
        self.sync_student_buffers(model)
        if runner.iter < self.burn_in_iters:
            return
        if self._teacher_keeps_bn_stats(model):
            self.sync_buffers(model.teacher)
        self.num_steps += 1
        if self.num_steps % self.interval == 0:
            self.momentum_update(model, self.momentum)

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Save the step counter."""
        checkpoint.setdefault('meta', dict())['ssda_mean_teacher'] = dict(
            num_steps=self.num_steps)

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Restore the step counter when resuming."""
        state = checkpoint.get('meta', dict()).get('ssda_mean_teacher')
        if runner._resume and state is not None:
            self.num_steps = state['num_steps']

    @staticmethod
    def _teacher_keeps_bn_stats(model: nn.Module) -> bool:
        return bool(getattr(model, 'teacher_keeps_bn_stats', False))

    @classmethod
    def sync_student_buffers(cls, model: nn.Module) -> None:
        """Replace the student's floating-point buffers by their mean over
        the ranks (nothing to do in a single process).

        Args:
            model (nn.Module): Model with ``student``.
        """
        cls.sync_buffers(model.student)

    @staticmethod
    def sync_buffers(module: nn.Module) -> None:
        """Replace ``module``'s floating-point buffers by their mean over
        the ranks (nothing to do in a single process)."""
        if get_world_size() == 1:
            return
        buffers = [
            buf for buf in module.buffers() if buf.dtype.is_floating_point
        ]
        if buffers:
            all_reduce_params(buffers, coalesce=True, op='mean')

    def momentum_update(self, model: nn.Module, momentum: float) -> None:
        """``teacher = (1 - momentum) * teacher + momentum * student``.

        Args:
            model (nn.Module): Model with ``student`` and ``teacher``.
            momentum (float): Weight of the student; 1 copies it.
        """
        teacher, student, copy_teacher, copy_student = self._paired_tensors(
            model, with_bn_stats=momentum == 1
            or not self._teacher_keeps_bn_stats(model))
        with torch.no_grad():
            if teacher:
                torch._foreach_lerp_(teacher, student, momentum)
            if copy_teacher:
                torch._foreach_copy_(copy_teacher, copy_student)

    def _paired_tensors(
        self,
        model: nn.Module,
        with_bn_stats: bool = True
    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor], List[Tensor]]:
        """Teacher/student tensors to average and to copy, name-checked.

        Args:
            model (nn.Module): Model with ``student`` and ``teacher``.
            with_bn_stats (bool): Include the BatchNorm buffers (with
                ``update_buffers``). Defaults to True.

        Returns:
            tuple[list[Tensor]]: Teacher and student tensors to average,
            teacher and student tensors to copy (integer buffers).
        """
        teacher_named = dict(model.teacher.named_parameters())
        student_named = dict(model.student.named_parameters())
        if self.update_buffers:
            teacher_named.update(model.teacher.named_buffers())
            student_named.update(model.student.named_buffers())
        if teacher_named.keys() != student_named.keys():
            raise RuntimeError('teacher and student differ in structure')
        if self.update_buffers and not with_bn_stats:
            for prefix, module in model.teacher.named_modules():
                if isinstance(module, _BatchNorm):
                    for name, _ in module.named_buffers(prefix=prefix):
                        del teacher_named[name]
        average, copy = ([], []), ([], [])
        for name, teacher_tensor in teacher_named.items():
            target = average if teacher_tensor.dtype.is_floating_point \
                else copy
            target[0].append(teacher_tensor.data)
            target[1].append(student_named[name].data)
        return (*average, *copy)
