import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub
from mmyolo.models.dense_heads import PPYOLOEHead, YOLOv6Head

from mmssda.registry import TASK_UTILS

from .class_score_head_adapter import ClassScoreHeadAdapter


@TASK_UTILS.register_module()
class EpochSwitchHeadAdapter(ClassScoreHeadAdapter):
    """Class-score heads whose assigner switches at an epoch: mmyolo's
    YOLOv6 and PPYOLOE heads.

    Scores as :class:`ClassScoreHeadAdapter`. Their loss uses the ATSS
    assigner while the MessageHub's ``epoch`` is below
    ``train_cfg.initial_epoch`` (YOLOv6: 4, PPYOLOE: 30) and the
    task-aligned one after. SSDA trains by iterations, and an
    iteration-based loop never advances ``epoch``: these heads would keep
    ATSS for the whole run. So ``semi_train_cfg.iters_per_epoch`` is
    required: before every loss the adapter sets the MessageHub's
    ``epoch`` to ``iter // iters_per_epoch`` (``iter`` is the runner's
    iteration, which MMEngine's ``RuntimeInfoHook`` publishes). A model
    without it is refused when built; ``detector.train_cfg.initial_epoch
    = 0`` (task-aligned from the start) still needs a value, e.g. 1.

    Example:
        >>> # City->Foggy: 2975 source images, 8 source pairs per batch
        >>> model = dict(
        ...     type='SSDADetector',
        ...     semi_train_cfg=dict(iters_per_epoch=372))
    """

    head_types = (YOLOv6Head, PPYOLOEHead)
    family = 'class_scores'

    def check(self, detector: nn.Module, semi_train_cfg: ConfigDict) -> None:
        """Require a positive ``semi_train_cfg.iters_per_epoch``."""
        head = self.head(detector)
        value = semi_train_cfg.get('iters_per_epoch')
        if value is None or int(value) != value or value < 1:
            raise ValueError(
                f'{type(head).__name__} switches its assigner when the '
                "MessageHub's epoch reaches train_cfg.initial_epoch="
                f'{getattr(head, "initial_epoch", "?")}, which an '
                'iteration-based loop never advances: set '
                'model.semi_train_cfg.iters_per_epoch (a positive int, '
                'e.g. source images // source pairs per batch), got '
                f'{value!r}')

    def before_loss(self, detector: nn.Module,
                    semi_train_cfg: ConfigDict) -> None:
        """Set the MessageHub's ``epoch`` from its ``iter``."""
        message_hub = MessageHub.get_current_instance()
        it = message_hub.get_info('iter', 0)
        message_hub.update_info('epoch',
                                int(it) // semi_train_cfg.iters_per_epoch)
