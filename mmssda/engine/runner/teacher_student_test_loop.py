from typing import Dict, List, Union

from mmengine.evaluator import Evaluator
from torch.utils.data import DataLoader

from mmssda.registry import LOOPS
from .shared_batch_teacher_student_val_loop import \
    SharedBatchTeacherStudentValLoop

# The hooks the validation loop calls, and their test names.
VAL_TO_TEST_HOOKS = {
    'before_val': 'before_test',
    'before_val_epoch': 'before_test_epoch',
    'before_val_iter': 'before_test_iter',
    'after_val_iter': 'after_test_iter',
    'after_val_epoch': 'after_test_epoch',
    'after_val': 'after_test',
}


class _TestStageRunner:
    """The runner as :class:`TeacherStudentTestLoop` shows it to the
    validation code it reuses: the same runner, whose val hooks are the
    test ones.

    Args:
        runner (Runner): The real runner; every other attribute is its.
    """

    def __init__(self, runner) -> None:
        self._runner = runner

    def __getattr__(self, name: str):
        return getattr(self._runner, name)

    def call_hook(self, fn_name: str, **kwargs) -> None:
        self._runner.call_hook(
            VAL_TO_TEST_HOOKS.get(fn_name, fn_name), **kwargs)


@LOOPS.register_module()
class TeacherStudentTestLoop(SharedBatchTeacherStudentValLoop):
    """Test loop that evaluates both the teacher and the student.

    :class:`SharedBatchTeacherStudentValLoop` (one pass over the data, each
    batch preprocessed once and predicted by both models) run as a test:
    the metrics are reported as ``teacher/<metric>`` and
    ``student/<metric>``, and returned by :meth:`run` (what
    ``Runner.test()`` returns). What makes it a test are its hooks: the
    test ones (``before_test``, ``before_test_epoch``, ``before_test_iter``,
    ``after_test_iter``, ``after_test_epoch``, ``after_test``) in place of
    the val ones. :class:`StudentEMAHook` therefore swaps the student-EMA
    in for the test, as for :class:`TestLoop`. Metrics that write files
    (e.g. ``mmdet.DumpDetResults``) write the student's results last.

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

    @property
    def runner(self) -> _TestStageRunner:
        """The runner, with the val hooks mapped to the test ones."""
        return self._test_stage_runner
