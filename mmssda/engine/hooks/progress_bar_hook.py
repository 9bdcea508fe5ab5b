import sys
import time
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmssda.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Draw a one-line training progress bar on the terminal.

    Meant for runs a person watches (the demo): each redraw shows the
    iteration, the total loss, the speed and the time left, and validation
    is announced. Only the main process draws, on stderr (like tqdm), so
    that stdout can be sent to a file.

    Args:
        desc (str): Label in front of the bar. Defaults to ``'train'``.
        width (int): Width of the bar in characters. Defaults to 30.
        interval (int): Redraw every ``interval`` iterations. Defaults to 1.

    Example:
        >>> custom_hooks = [dict(type='ProgressBarHook', desc='ssda')]
    """

    priority = 'VERY_LOW'

    def __init__(self,
                 desc: str = 'train',
                 width: int = 30,
                 interval: int = 1) -> None:
        if width < 1 or interval < 1:
            raise ValueError('ProgressBarHook needs width >= 1 and '
                             f'interval >= 1, got {width} and {interval}')
        self.desc = desc
        self.width = width
        self.interval = interval
        self._start_time = 0.
        self._start_iter = 0

    def before_train(self, runner) -> None:
        self._start_time = time.perf_counter()
        self._start_iter = runner.iter

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        done, total = runner.iter + 1, runner.max_iters
        if done % self.interval and done != total:
            return
        loss = None if not outputs else outputs.get('loss')
        self._draw(self.format_line(done, total, loss))
        if done == total:
            self._draw('\n')

    def before_val_epoch(self, runner) -> None:
        self._draw(f'\n{self.desc}: evaluating on the validation set...\n')

    def format_line(self, done: int, total: int,
                    loss: Optional[float]) -> str:
        """The bar for ``done`` of ``total`` iterations.

        Returns:
            str: e.g. ``'\\rssda |#####.....| 50/100 loss 1.234 2.1 it/s
            eta 0:00:24'``.
        """
        filled = int(self.width * done / total)
        bar = '#' * filled + '.' * (self.width - filled)
        elapsed = max(time.perf_counter() - self._start_time, 1e-9)
        rate = (done - self._start_iter) / elapsed
        eta = int((total - done) / rate) if rate > 0 else 0
        loss_str = '' if loss is None else f' loss {float(loss):.3f}'
        return (f'\r{self.desc} |{bar}| {done}/{total}{loss_str} '
                f'{rate:.2f} it/s eta {eta // 3600}:{eta // 60 % 60:02d}:'
                f'{eta % 60:02d}')

    @staticmethod
    def _draw(text: str) -> None:
        if is_main_process():
            sys.stderr.write(text)
            sys.stderr.flush()
