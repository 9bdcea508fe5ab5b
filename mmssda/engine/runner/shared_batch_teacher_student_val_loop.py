import copy
from typing import Dict, List, Sequence, Union

import torch
from mmdet.engine.runner import TeacherStudentValLoop
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner.amp import autocast
from torch.utils.data import DataLoader

from mmssda.registry import LOOPS

#: The models scored, in this order; metrics are prefixed by their names.
PREDICT_ON = ('teacher', 'student')


@LOOPS.register_module()
class SharedBatchTeacherStudentValLoop(TeacherStudentValLoop):
    """Validate the teacher and the student on one pass over the data.

    mmdet's ``TeacherStudentValLoop`` runs the validation set twice, once
    per model, so every image is loaded, decoded, resized and preprocessed
    twice. This loop iterates the dataloader once: each batch goes through
    the data preprocessor once and is then predicted by the teacher and by
    the student (``semi_test_cfg.predict_on``), each model's predictions
    going to its own evaluator (the configured one for the teacher, a deep
    copy of it for the student). The metrics are those of the parent:
    ``teacher/<metric>`` and ``student/<metric>``, each equal to a plain
    validation of that model alone; metrics that write files (e.g.
    ``mmdet.DumpDetResults``) write the student's results last.

    Hooks see what they see in the parent, per model: ``before_val_iter``
    and ``after_val_iter`` are called once per batch and model, the teacher
    first, with ``predict_on`` set to the model that predicts and that
    model's ``outputs``. Batches alternate between the models instead of
    running all teacher batches first. Models whose ``predict`` returns
    losses are not supported (mmdet's detectors return data samples).

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The validation dataloader or its
            config.
        evaluator (Evaluator | dict | list): The evaluator or its config.
        fp16 (bool): Run the data preprocessor and the models under
            autocast. Defaults to False.

    Example:
        >>> val_cfg = dict(type='SharedBatchTeacherStudentValLoop')
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        # dataset_meta was set on self.evaluator by the parent: the copy
        # has it too
        self.evaluators: Dict[str, Evaluator] = dict(
            teacher=self.evaluator, student=copy.deepcopy(self.evaluator))

    def _semi_model(self):
        """The unwrapped model; it must have a teacher and a student.

        Raises:
            TypeError: It has no ``teacher`` and ``student``.
        """
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        if not (hasattr(model, 'teacher') and hasattr(model, 'student')):
            raise TypeError(f'{type(self).__name__} needs a model with '
                            f'`teacher` and `student`, got {type(model)}')
        return model

    def run(self) -> Dict[str, float]:
        """Validate the teacher and the student on one pass over the data.

        Returns:
            dict[str, float]: Metrics prefixed by ``teacher/``/``student/``.
        """
        model = self._semi_model()
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        predict_on = model.semi_test_cfg.get('predict_on', None)
        try:
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
        finally:
            model.semi_test_cfg['predict_on'] = predict_on
        metrics = dict()
        for name in PREDICT_ON:
            model_metrics = self.evaluators[name].evaluate(
                len(self.dataloader.dataset))
            metrics.update(
                {f'{name}/{key}': value
                 for key, value in model_metrics.items()})
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics

    @torch.no_grad()
    def run_iter(self, idx: int, data_batch: Sequence[dict]) -> None:
        """Preprocess one batch once; predict it with each model.

        Args:
            idx (int): The batch's index.
            data_batch (dict | Sequence[dict]): A batch from the dataloader.
        """
        model = self._semi_model()
        with autocast(enabled=self.fp16):
            data = model.data_preprocessor(data_batch, False)
        for name in PREDICT_ON:
            model.semi_test_cfg['predict_on'] = name
            self.runner.call_hook(
                'before_val_iter', batch_idx=idx, data_batch=data_batch)
            with autocast(enabled=self.fp16):
                # what ``val_step`` does after its data preprocessor
                outputs = model._run_forward(data, mode='predict')
            # mmdet's detectors write their predictions into the data
            # samples they are given, the same objects for both models:
            # each evaluator reads them before the next model predicts
            self.evaluators[name].process(
                data_samples=outputs, data_batch=data_batch)
            self.runner.call_hook(
                'after_val_iter',
                batch_idx=idx,
                data_batch=data_batch,
                outputs=outputs)
