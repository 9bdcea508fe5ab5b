import logging
from collections import deque
from typing import Deque, Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmssda.registry import HOOKS

DataBatch = Optional[dict]


def _to_float(value) -> float:
    """A logged value (tensor or number) as a float."""
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)


@HOOKS.register_module()
class PseudoLabelHealthHook(Hook):
    """Warn once when the teacher gives (almost) no pseudo-labels.

    A mean teacher whose detections never pass the pseudo-label threshold
    makes the distillation term a push towards "no objects" on every target
    image, and the run looks healthy otherwise. After each iteration the
    hook reads the detector's logged statistics from ``outputs`` (the
    ``log_vars`` that :class:`RuntimeInfoHook` puts into the message hub as
    ``train/distill.*``): ``distill.num_pseudo`` (pseudo-boxes per image)
    and, where logged, the teacher's score statistics (keys of
    ``distill.*`` containing ``score``) and the pseudo-labels'
    ``precision``/``recall``. Only iterations that distil count: the model's
    ``distill_active`` is True (the burn-in of :class:`SSDAMeanTeacherHook`
    is over) and ``distill.num_pseudo`` was logged (a source-only model
    never logs it, and the hook stays silent).

    When the mean of ``distill.num_pseudo`` over the last ``window``
    distilling iterations is below ``min_pseudo_per_img``, it logs ONE
    warning with that mean, the score statistics over the same iterations,
    the pseudo-label ``score_thr`` (``semi_train_cfg.pseudo_label_cfg``),
    the burn-in length and ``load_from``, and what to change. The warning is
    also kept in the message hub's runtime info under
    :attr:`INFO_KEY` (``{'iter': ..., 'message': ...}``), so a resumed run
    does not repeat it and reports can read it.

    The statistics themselves reach TensorBoard through the logger:
    ``LoggerHook`` writes every ``train/`` scalar of the message hub to all
    visualizer backends (``TensorboardVisBackend`` in the recipe) every
    ``interval`` iterations, as ``distill.num_pseudo`` etc.

    Args:
        min_pseudo_per_img (float): Pseudo-boxes per image at or above
            which the teacher counts as healthy. Defaults to 0.1.
        window (int): Number of distilling iterations averaged before the
            hook judges; the earliest warning comes after ``window``
            iterations past the burn-in. Defaults to 100.
        num_pseudo_key (str): Logged key of the pseudo-boxes per image.
            Defaults to ``'distill.num_pseudo'``.

    Example:
        >>> custom_hooks = [
        ...     dict(type='SSDAMeanTeacherHook', burn_in_iters=1000),
        ...     dict(type='PseudoLabelHealthHook', min_pseudo_per_img=0.1,
        ...          window=100)]
    """

    priority = 'LOW'
    INFO_KEY = 'pseudo_label_health_warning'

    def __init__(self,
                 min_pseudo_per_img: float = 0.1,
                 window: int = 100,
                 num_pseudo_key: str = 'distill.num_pseudo') -> None:
        if min_pseudo_per_img <= 0:
            raise ValueError('PseudoLabelHealthHook: min_pseudo_per_img '
                             f'must be > 0, got {min_pseudo_per_img}')
        if not isinstance(window, int) or window < 1:
            raise ValueError('PseudoLabelHealthHook: window must be an int '
                             f'>= 1, got {window!r}')
        self.min_pseudo_per_img = min_pseudo_per_img
        self.window = window
        self.num_pseudo_key = num_pseudo_key
        self.prefix = num_pseudo_key.rpartition('.')[0] + '.' \
            if '.' in num_pseudo_key else ''
        #: Recent values per statistic, over distilling iterations.
        self.history: Dict[str, Deque[float]] = {}
        #: The warning given (None while silent).
        self.warning: Optional[str] = None

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        """Do not repeat a warning given before a resume."""
        warned = runner.message_hub.get_info(self.INFO_KEY)
        if warned is not None:
            self.warning = warned['message']

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DataBatch = None,
                         outputs: Optional[dict] = None) -> None:
        """Record this iteration's statistics; warn once if unhealthy."""
        if self.warning is not None:
            return
        if not getattr(self._model(runner), 'distill_active', True) or \
                not isinstance(outputs, dict) or \
                self.num_pseudo_key not in outputs:
            self.history.clear()  # burn-in: judge distillation only
            return
        self._record(outputs)
        num_pseudo = self.history[self.num_pseudo_key]
        if len(num_pseudo) < self.window:
            return
        mean = sum(num_pseudo) / len(num_pseudo)
        if mean < self.min_pseudo_per_img:
            self.warning = self.message(runner, mean)
            print_log(self.warning, logger='current', level=logging.WARNING)
            runner.message_hub.update_info(
                self.INFO_KEY, dict(iter=runner.iter, message=self.warning))

    def _record(self, outputs: dict) -> None:
        """Append the statistics the warning reports."""
        for key, value in outputs.items():
            if key == self.num_pseudo_key or self._is_teacher_statistic(key):
                self.history.setdefault(
                    key, deque(maxlen=self.window)).append(_to_float(value))

    def _is_teacher_statistic(self, key: str) -> bool:
        """Score statistics and pseudo-label precision/recall."""
        return key.startswith(self.prefix) and 'loss' not in key and any(
            word in key for word in ('score', 'precision', 'recall'))

    def message(self, runner, mean: float) -> str:
        """The warning: the numbers, then what to change.

        Args:
            runner (Runner): The runner.
            mean (float): Mean pseudo-boxes per image over the window.

        Returns:
            str: The warning text.
        """
        first = runner.iter + 2 - self.window
        stats = ', '.join(
            f'{key} {sum(v) / len(v):.3g}'
            for key, v in sorted(self.history.items())
            if key != self.num_pseudo_key)
        cfg = getattr(self._model(runner), 'semi_train_cfg', None) or {}
        score_thr = (cfg.get('pseudo_label_cfg') or {}).get('score_thr')
        burn_in = [
            hook.burn_in_iters for hook in runner.hooks
            if hasattr(hook, 'burn_in_iters')
        ]
        return (
            f'Pseudo-label health: the teacher gave {mean:.3g} pseudo-boxes '
            f'per image on average over the last {self.window} distilling '
            f'iterations ({first}-{runner.iter + 1}), below '
            f'min_pseudo_per_img={self.min_pseudo_per_img}: distillation '
            'now only teaches the student that target images hold no '
            'objects. '
            f'Teacher statistics over those iterations: {stats or "none"}. '
            'Settings: semi_train_cfg.pseudo_label_cfg.score_thr='
            f'{score_thr}, burn_in_iters='
            f'{burn_in[0] if burn_in else "n/a"}, load_from='
            f'{getattr(runner, "_load_from", None)}. '
            'To fix: lower score_thr below the teacher\'s top scores, '
            'train a longer source-only burn-in (SSDAMeanTeacherHook '
            'burn_in_iters), or start from pretrained weights (load_from: a '
            'source-only checkpoint or mmyolo\'s COCO YOLOv5). This warning '
            'is given once.')
