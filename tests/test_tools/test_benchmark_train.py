"""tools/analysis_tools/benchmark_train.py on a tiny model and data set."""
import importlib.util
import json
import os.path as osp

from tests.test_models.utils import REPO

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_train.py')
CONFIG = osp.join(REPO, 'configs', 'ssda_yolov5n_fog_shapes.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_train', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_train_tiny(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    load_tool().main([
        CONFIG, '--img-size', '64', '--deepen', '0.33', '--widen', '0.125',
        '--source-per-batch', '2', '--target-per-batch', '2', '--iters',
        '3', '--warmup', '1', '--floor-iters', '2', '--num-workers', '0',
        '--num-source', '6', '--num-val', '4', '--val-repeats', '1',
        # one thread: no OpenMP barrier stalls when the machine is busy
        '--threads', '1', '--count-flops',
        '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(out)
    ])
    printed = capsys.readouterr().out
    assert 'iter/floor' in printed and 'floor =' in printed
    result = json.loads(out.read_text())
    meta = result['meta']
    assert meta['img_size'] == 64 and meta['iters'] == 3
    assert 'floor_includes' in meta
    assert set(result['results']) == {'ssda', 'source_only'}
    assert meta['matmul_gflop_per_s'] > 0
    ssda = result['results']['ssda']
    source_only = result['results']['source_only']
    # three student passes with backward and a teacher pass against one
    # student pass: about three to four times the operations
    assert 2.5 < ssda['floor_gflop'] / source_only['floor_gflop'] < 4.5
    assert ssda['floor_gflop_per_s'] == (
        ssda['floor_gflop'] / ssda['floor_s']['median'])
    assert '[ssda] floor' in printed and 'GFLOP/s' in printed
    for name, r in result['results'].items():
        assert len(r['iter_times']) == 3
        assert r['images_per_iter'] == 2 * (2 + 2)
        for key in ('iter_s', 'floor_s', 'iter_cpu_s', 'floor_cpu_s'):
            assert 0 < r[key]['min'] <= r[key]['median'] <= r[key]['max']
        # the floor is a part of the iteration's work
        assert r['floor_s']['min'] <= r['iter_s']['median'], name
        assert r['ratio_iter_over_floor'] > 0
        assert r['images_per_s'] > 0
        assert r['peak_rss_mb']['main'] > 0
    val = result['results']['ssda']['val']
    plain = result['results']['ssda']['plain_mmyolo_val']
    assert val['passes'] == plain['passes'] == 2
    assert val['images'] == plain['images'] == 4
    assert val['images_per_s_per_model'] > 0
    assert plain['images_per_s_per_model'] > 0
