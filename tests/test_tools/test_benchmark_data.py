"""tools/analysis_tools/benchmark_data.py on a tiny fixture."""
import importlib.util
import json
import os.path as osp

import cv2

from tests.test_models.utils import REPO

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_data.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('benchmark_data', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixture_layout(tmp_path):
    tool = load_tool()
    root = tool.write_fixture(str(tmp_path / 'f'), 2, (96, 48))
    for real, fake in tool.SPLITS:
        for i in range(2):
            img = cv2.imread(osp.join(root, real, 'images', f'{i:05d}.png'))
            assert img.shape == (48, 96, 3)
            assert cv2.imread(
                osp.join(root, fake, 'images', f'{i:05d}.png')).shape == \
                img.shape
            lines = open(osp.join(root, real, 'labels',
                                  f'{i:05d}.txt')).read().split('\n')
            assert 3 <= len([x for x in lines if x]) <= 8


def test_benchmark_data_tiny(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    result = load_tool().main([
        '--size', '96', '48', '--num-pairs', '2',
        '--img-size', '32', '--source-per-batch', '2',
        '--target-per-batch', '2', '--batches', '1', '--cache', 'ram',
        'disk', '--step-times', '0.001', '10', '--work-dir',
        str(tmp_path / 'work'), '--out',
        str(out)
    ])
    printed = capsys.readouterr().out
    assert 'workers for step' in printed
    assert json.loads(out.read_text())['meta'] == result['meta']
    # each loader ran in a process of its own
    assert result['meta']['mmssda_in_process'] is False
    results = result['results']
    assert set(results) == {'mmssda', 'mmssda cache=ram',
                            'mmssda cache=disk'}
    assert results['mmssda']['vs_uncached'] == 1.0
    assert results['mmssda']['fill_s'] is None
    for name, r in results.items():
        assert r['s_per_batch'] > 0 and r['cpu_s_per_batch'] > 0
        # one worker feeds a 10 s step; a 1 ms step needs more
        assert r['workers']['10.0'] == 1
        assert r['workers']['0.001'] > 1
        if name != 'mmssda':
            assert r['fill_s'] > 0
            assert r['vs_uncached'] == r['cpu_s_per_batch'] / \
                results['mmssda']['cpu_s_per_batch']
    # the disk cache went to the work dir, not next to the images
    assert osp.isdir(str(tmp_path / 'work' / 'image_cache'))


def test_vs_original_reads_each_round_against_the_same_round():
    def rounds(*cpu):
        return [dict(cpu_s_per_batch=c) for c in cpu]

    runs = {
        'mmssda': rounds(4.0, 4.4, 3.9),
        'mmssda cache=ram': rounds(0.16, 0.2, 0.15),
        'mmssda cache=disk': rounds(0.17, 0.21, 0.16),
        'original': rounds(4.0, 4.0, 3.9),
        'original --cache-images': rounds(0.2, 0.25, 0.15),
    }
    out = load_tool().vs_original(runs)
    assert set(out) == {'mmssda', 'mmssda cache=ram', 'mmssda cache=disk'}
    assert out['mmssda']['against'] == 'original'
    assert out['mmssda']['per_round'] == [1.0, 4.4 / 4.0, 1.0]
    assert out['mmssda cache=ram']['against'] == 'original --cache-images'
    assert out['mmssda cache=ram']['per_round'] == [
        0.16 / 0.2, 0.2 / 0.25, 0.15 / 0.15
    ]
    assert out['mmssda cache=ram']['median'] == 0.8
    # without the original there is nothing to compare
    assert load_tool().vs_original(
        {k: v for k, v in runs.items() if k.startswith('mmssda')}) == {}
