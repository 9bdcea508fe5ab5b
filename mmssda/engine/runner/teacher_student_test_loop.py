from typing import Dict

from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop

from mmssda.registry import LOOPS


@LOOPS.register_module()
class TeacherStudentTestLoop(TestLoop):
    """Test loop that evaluates both the teacher and the student.

    The test counterpart of ``mmdet.TeacherStudentValLoop``: the test set is
    run once with ``semi_test_cfg.predict_on='teacher'`` and once with
    ``'student'`` and the metrics are reported as ``teacher/<metric>`` and
    ``student/<metric>``. Test hooks run as with :class:`TestLoop`, so
    :class:`StudentEMAHook` swaps the student-EMA in before both passes.
    Metrics that write files (e.g. ``mmdet.DumpDetResults``) write the
    student's results last.

    Example:
        >>> test_cfg = dict(type='TeacherStudentTestLoop')
    """

    def run(self) -> Dict[str, float]:
        """Launch the test of the teacher and the student.

        Returns:
            dict[str, float]: Metrics prefixed by ``teacher/``/``student/``.
        """
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        if not (hasattr(model, 'teacher') and hasattr(model, 'student')):
            raise TypeError('TeacherStudentTestLoop needs a model with '
                            f'`teacher` and `student`, got {type(model)}')

        predict_on = model.semi_test_cfg.get('predict_on', None)
        multi_metrics = dict()
        for name in ('teacher', 'student'):
            model.semi_test_cfg['predict_on'] = name
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
            metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
            multi_metrics.update(
                {f'{name}/{key}': value
                 for key, value in metrics.items()})
        model.semi_test_cfg['predict_on'] = predict_on

        self.runner.call_hook('after_test_epoch', metrics=multi_metrics)
        self.runner.call_hook('after_test')
        return multi_metrics
