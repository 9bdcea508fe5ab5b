import pytest

from mmssda.engine.hooks import ProgressBarHook


def test_format_line_shows_fraction_loss_and_eta(monkeypatch):
    hook = ProgressBarHook(desc='ssda', width=10)
    hook._start_time, hook._start_iter = 100.0, 0
    monkeypatch.setattr('time.perf_counter', lambda: 110.0)
    line = hook.format_line(done=25, total=100, loss=1.5)
    # 25 iterations in 10 s: 2.5 it/s; 75 left: 30 s
    assert line == '\rssda |##........| 25/100 loss 1.500 2.50 it/s eta 0:00:30'


def test_rejects_bad_width():
    with pytest.raises(ValueError, match='width'):
        ProgressBarHook(width=0)
