from typing import Dict, List, Optional, Union

from mmdet.engine.runner import TeacherStudentValLoop
from mmengine.evaluator import Evaluator
from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop
from torch.utils.data import DataLoader

from mmssda.registry import LOOPS

# The stage hooks mmdet's TeacherStudentValLoop calls, and their test names.
VAL_TO_TEST_HOOKS = {
    'before_val': 'before_test',
    'before_val_epoch': 'before_test_epoch',
    'after_val_epoch': 'after_test_epoch',
    'after_val': 'after_test',
}


class _TestStageRunner:
    """The runner as :class:`TeacherStudentTestLoop` shows it to mmdet's
    validation code: the same runner, whose val stage hooks are the test
    ones; it keeps the metrics passed to ``after_test_epoch``.

    Args:
        runner (Runner): The real runner; every other attribute is its.
    """

    def __init__(self, runner) -> None:
        self._runner = runner
        self.metrics: Optional[Dict[str, float]] = None

    def __getattr__(self, name: str):
        return getattr(self._runner, name)

    def call_hook(self, fn_name: str, **kwargs) -> None:
        fn_name = VAL_TO_TEST_HOOKS.get(fn_name, fn_name)
        if fn_name == 'after_test_epoch':
            self.metrics = kwargs['metrics']
        self._runner.call_hook(fn_name, **kwargs)


@LOOPS.register_module()
class TeacherStudentTestLoop(TeacherStudentValLoop):
    """Test loop that evaluates both the teacher and the student.

    ``mmdet.TeacherStudentValLoop`` run as a test: the test set is run once
    with ``semi_test_cfg.predict_on='teacher'`` and once with ``'student'``
    and the metrics are reported as ``teacher/<metric>`` and
    ``student/<metric>``. What differs from the parent is what makes it a
    test: each batch goes through :meth:`TestLoop.run_iter` (``test_step``,
    ``*_test_iter`` hooks), the stage hooks are the test ones
    (``before_test``, ``before_test_epoch``, ``after_test_epoch``,
    ``after_test``) and :meth:`run` returns the metrics (what
    ``Runner.test()`` returns). :class:`StudentEMAHook` therefore swaps the
    student-EMA in before both passes, as for :class:`TestLoop`. Metrics
    that write files (e.g. ``mmdet.DumpDetResults``) write the student's
    results last.

    Args:
        runner (Runner): The runner.
        dataloader (DataLoader | dict): The test dataloader or its config.
        evaluator (Evaluator | dict | list): The evaluator or its config.
        fp16 (bool): Run the model under autocast. Defaults to False.

    Example:
        >>> test_cfg = dict(type='TeacherStudentTestLoop')
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False) -> None:
        # set first: the parent's __init__ reads ``self.runner``
        self._test_stage_runner = _TestStageRunner(runner)
        super().__init__(runner, dataloader, evaluator, fp16)
        self.test_loss: Dict = dict()  # read by TestLoop.run_iter

    @property
    def runner(self) -> _TestStageRunner:
        """The runner, with the val stage hooks mapped to the test ones."""
        return self._test_stage_runner

    run_iter = TestLoop.run_iter

    def run(self) -> Dict[str, float]:
        """Test the teacher, then the student.

        Returns:
            dict[str, float]: Metrics prefixed by ``teacher/``/``student/``.

        Raises:
            TypeError: The model has no ``teacher`` and ``student``.
        """
        model = self._runner.model
        if is_model_wrapper(model):
            model = model.module
        if not (hasattr(model, 'teacher') and hasattr(model, 'student')):
            raise TypeError('TeacherStudentTestLoop needs a model with '
                            f'`teacher` and `student`, got {type(model)}')
        self.test_loss.clear()
        super().run()
        return self.runner.metrics
