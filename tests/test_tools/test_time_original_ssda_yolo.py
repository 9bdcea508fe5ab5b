"""The timing harness of the original's training loop, on a stand-in
training script with the original's loop shape (a tqdm over an
``enumerate``); the real original is not needed."""
import json
import os
import os.path as osp
import subprocess
import sys

from tests.test_models.utils import REPO

TOOL = osp.join(REPO, 'tools', 'analysis_tools',
                'time_original_ssda_yolo.py')
SCRIPT = '''
import sys, time
from tqdm import tqdm
n = int(sys.argv[sys.argv.index('--n') + 1])
for _ in tqdm(range(2)):  # another progress bar: not timed
    time.sleep(0.2)
for i, _ in tqdm(enumerate(range(n)), total=n):
    time.sleep(0.05 if i % 2 else 0.02)
print('epoch done')
'''


def _run(tmp_path, n):
    repo = tmp_path / 'repo'
    repo.mkdir(exist_ok=True)
    (repo / 'ssda_yolov5_train.py').write_text(SCRIPT)
    out = tmp_path / 'o.json'
    proc = subprocess.run(
        [sys.executable, TOOL, '--repo', str(repo), '--out', str(out),
         'train', '--iters', '4', '--warmup', '1', '--', '--n',
         str(n)],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    return proc, out


def test_times_training_iterations(tmp_path):
    proc, out = _run(tmp_path, 100)
    assert proc.returncode == 0, proc.stderr
    # stopped after warmup + iters, long before the epoch's end
    assert 'epoch done' not in proc.stdout
    result = json.loads(out.read_text())
    times = result['iter_times']
    assert len(times) == 4 and not result['epoch_ended']
    # iterations 1..4 alternate 50 ms / 20 ms sleeps (the other bar's
    # 0.2 s steps are not counted)
    assert all(t >= 0.045 for t in times[0::2])
    assert all(0.015 <= t < 0.2 for t in times[1::2])
    assert [a for a in result['argv'] if a != '--'] == ['--n', '100']
    assert result['peak_rss_main_mb'] > 0


def test_epoch_too_short(tmp_path):
    proc, out = _run(tmp_path, 3)
    assert proc.returncode != 0
    assert 'needs at least 5 batches' in proc.stderr
