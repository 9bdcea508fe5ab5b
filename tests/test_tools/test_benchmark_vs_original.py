"""tools/analysis_tools/benchmark_vs_original.py with a tiny model, against
a stand-in for the original's training script (same command line, same
loop shape, reads the data yaml the tool writes); the real original is not
needed."""
import importlib.util
import os.path as osp
import sys

from tests.test_models.utils import REPO

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_vs_original.py')
STAND_IN = '''
import argparse, glob, os, time
from tqdm import tqdm
p = argparse.ArgumentParser()
for a in ('--weights', '--cfg', '--data', '--batch-size', '--workers',
          '--device', '--epochs', '--project'):
    p.add_argument(a)
p.add_argument('--img-size', nargs=2)
p.add_argument('--notest', action='store_true')
p.add_argument('--nosave', action='store_true')
p.add_argument('--consistency_loss', action='store_true')
args = p.parse_args()
assert args.weights == '' and args.consistency_loss and args.notest
cfg = {}
for line in open(args.data):
    key, _, value = line.partition(':')
    cfg[key.strip()] = value.strip().strip('[]')
n = len(glob.glob(os.path.join(cfg['path'], cfg['train_source_real'], '*')))
m = len(glob.glob(os.path.join(cfg['path'], cfg['train_target_fake'], '*')))
assert n == m > 0
nb = (n + m) // 2 // int(args.batch_size)
for i, _ in tqdm(enumerate(range(nb)), total=nb):
    time.sleep(0.03)
'''


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_vs_original',
                                                  TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_vs_original_tiny(tmp_path, capsys):
    repo = tmp_path / 'original'
    repo.mkdir()
    (repo / 'ssda_yolov5_train.py').write_text(STAND_IN)
    result = load_tool().main([
        '--original', str(repo), '--original-python', sys.executable,
        '--img-size', '64', '--deepen', '0.33', '--widen', '0.125',
        '--source-per-batch', '2', '--num-workers', '0', '--iters', '2',
        '--warmup', '1', '--rounds', '1', '--threads', '1',
        '--ours-variants', 'mmssda', 'cl:model.channels_last=True',
        '--work-dir', str(tmp_path / 'work'), '--out',
        str(tmp_path / 'r.json')
    ])
    printed = capsys.readouterr().out
    assert '/ original' in printed and "--weights ''" in printed
    summary = result['summary']
    assert set(summary) == {'original', 'mmssda', 'cl'}
    original = summary['original']['s_per_iter']
    assert original >= 0.03
    for name in ('mmssda', 'cl'):
        x = summary[name]
        assert x['s_per_iter'] > 0 and x['floor_s'] > 0
        assert x['ratio_median'] == x['s_per_iter'] / original
    # the data set holds enough batches for one epoch of the original
    data_root = result['meta']['data_root']
    assert osp.isfile(osp.join(data_root, 'original_data.yaml'))
