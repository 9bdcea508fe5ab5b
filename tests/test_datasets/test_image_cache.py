"""ImageCache and the `cache` switch of LoadPairedImageFromFile."""
import os
import os.path as osp
import random
import stat
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from mmssda.datasets import ImageCache, PairedDataset
from mmssda.datasets import image_cache as image_cache_module
from mmssda.datasets.transforms import LoadPairedImageFromFile

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _with_cache(pipeline, **cache):
    """``pipeline`` with every LoadPairedImageFromFile given ``cache``."""
    out = []
    for t in pipeline:
        t = dict(t)
        if t['type'] == 'LoadPairedImageFromFile':
            t.update(cache)
        if 'pre_transform' in t:
            t['pre_transform'] = _with_cache(t['pre_transform'], **cache)
        out.append(t)
    return out


def _dataset(data, helpers, pipeline):
    return PairedDataset(
        dataset=helpers['inner_cfg']('yolo', data['root']),
        fake_root=data['fake_root'], pipeline=pipeline)


def _batch(ds, seeds):
    out = []
    for seed in seeds:
        np.random.seed(seed)
        random.seed(seed)
        out.append(ds[seed % len(ds)])
    return out


def _assert_same(a, b):
    for key in ('source_real', 'source_fake'):
        assert torch.equal(a['inputs'][key], b['inputs'][key]), key
    sa, sb = a['data_samples']['source_real'], b['data_samples']['source_real']
    assert torch.equal(sa.gt_instances.bboxes.tensor,
                       sb.gt_instances.bboxes.tensor)
    assert torch.equal(sa.gt_instances.labels, sb.gt_instances.labels)


@pytest.mark.parametrize('mode', ['ram', 'disk'])
def test_cached_batch_is_identical(tmp_path, pair_data, paired_helpers,
                                   mmssda_scope, mode):
    # 160x96 images, 64 px mosaic cells: stored at 64x38 (ratio 0.4)
    data = pair_data(tmp_path / 'd', num=4, size=(160, 96),
                     fake='different', marker=True, real_ext='.png')
    # a fake of another size goes through the same size match
    fake0 = osp.join(data['fake_root'], '0000.png')
    cv2.imwrite(fake0, cv2.resize(cv2.imread(fake0), (120, 72)))
    pipeline = paired_helpers['train_pipeline'](rotate=5.0, shear=2.0)
    root = tmp_path / 'cache'
    root.mkdir()
    plain = _dataset(data, paired_helpers, pipeline)
    cached = _dataset(
        data, paired_helpers,
        _with_cache(pipeline, cache=mode, cache_scale=(64, 64),
                    cache_dir=str(root)))
    seeds = range(6)
    with pytest.warns(UserWarning, match='resized to the real size'):
        expected = _batch(plain, seeds)
    first = _batch(cached, seeds)  # decodes and stores
    again = _batch(cached, seeds)  # reads the stored images
    for e, f, a in zip(expected, first, again):
        _assert_same(e, f)
        _assert_same(e, a)
    assert sum(len(e['data_samples']['source_real'].gt_instances)
               for e in expected) > 0
    # every real and fake image stored once, at the training scale
    loader = cached.pipeline.transforms[0]
    entries = [
        osp.join(d, f) for d, _, files in os.walk(loader.cache.cache_dir)
        for f in files if f.endswith('.npy')
    ]
    assert len(entries) == 8
    assert {np.load(e).shape for e in entries} == {(38, 64, 3)}


def test_area_interpolation_changes_pixels_not_boxes(tmp_path, pair_data,
                                                     paired_helpers,
                                                     mmssda_scope):
    data = pair_data(tmp_path / 'd', num=4, size=(160, 96), marker=True,
                     real_ext='.png')
    pipeline = paired_helpers['train_pipeline']()
    plain = _dataset(data, paired_helpers, pipeline)
    area = _dataset(
        data, paired_helpers,
        _with_cache(pipeline, cache='disk', cache_scale=(64, 64),
                    cache_dir=str(tmp_path / 'c'),
                    cache_interpolation='area'))
    for e, a in zip(_batch(plain, range(4)), _batch(area, range(4))):
        se, sa = (x['data_samples']['source_real'] for x in (e, a))
        assert torch.equal(se.gt_instances.bboxes.tensor,
                           sa.gt_instances.bboxes.tensor)
        diff = (e['inputs']['source_real'].float() -
                a['inputs']['source_real'].float()).abs()
        assert 0 < diff.mean() < 10


def test_loader_scales_boxes_and_keeps_ori_shape(tmp_path, pair_data,
                                                 paired_helpers,
                                                 mmssda_scope):
    data = pair_data(tmp_path / 'd', num=2, size=(160, 96))
    ds = _dataset(data, paired_helpers, [])
    loader = LoadPairedImageFromFile(
        cache='disk', cache_scale=(64, 64), cache_dir=str(tmp_path / 'c'))
    info = ds.get_data_info(0)
    boxes = [list(i['bbox']) for i in info['instances']]
    out = loader(dict(info, dataset=ds))
    assert out['img'].shape == out['fake_img'].shape == (38, 64, 3)
    assert out['img_shape'] == (38, 64) and out['ori_shape'] == (96, 160)
    np.testing.assert_allclose(
        [i['bbox'] for i in out['instances']],
        np.float32(boxes) * np.float32(0.4), rtol=0, atol=0)
    # an image smaller than the scale is kept as it is
    big = LoadPairedImageFromFile(
        cache='disk', cache_scale=(320, 320), cache_dir=str(tmp_path / 'c'))
    out = big(ds.get_data_info(1))
    assert out['img'].shape == (96, 160, 3)
    assert out['img_shape'] == out['ori_shape'] == (96, 160)


def test_changed_source_or_scale_is_a_miss(tmp_path):
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.full((100, 200, 3), 10, np.uint8))
    cache = ImageCache('disk', (50, 50), cache_dir=str(tmp_path / 'c'))
    decode = cv2.imread
    img, ori, ratio = cache.load_real(path, decode)
    assert img.shape == (25, 50, 3) and ori == (100, 200) and ratio == 0.25
    assert int(img.mean()) == 10
    # a hit does not decode
    img, _, _ = cache.load_real(path, lambda p: pytest.fail('decoded'))
    assert int(img.mean()) == 10
    # the source changes (content and size): a miss, the old entry goes
    cv2.imwrite(path, np.full((100, 200, 3), 200, np.uint8))
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    img, _, _ = cache.load_real(path, decode)
    assert int(img.mean()) == 200
    folders = os.listdir(cache.cache_dir)
    assert len(folders) == 1
    assert len(os.listdir(osp.join(cache.cache_dir, folders[0]))) == 2
    # another scale: a miss, stored at its own size in place of the old
    other = ImageCache('disk', (100, 100), cache_dir=str(tmp_path / 'c'))
    assert other.load_real(path, decode)[0].shape == (50, 100, 3)
    assert len(os.listdir(osp.join(cache.cache_dir, folders[0]))) == 2
    decoded = []
    img = cache.load_real(path, lambda p: decoded.append(p) or decode(p))[0]
    assert img.shape == (25, 50, 3) and decoded == [path]


@pytest.mark.parametrize('mode', ['ram', 'disk'])
def test_hits_share_the_stored_pages(tmp_path, mode, monkeypatch):
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.full((100, 200, 3), 10, np.uint8))
    root = tmp_path / 'c'
    root.mkdir()

    def no_decode(p):
        pytest.fail(f'decoded {p}')

    cache = ImageCache(mode, (50, 50), cache_dir=str(root))
    built = cache.load_real(path, cv2.imread)[0]
    hit = cache.load_real(path, no_decode)[0]
    again = cache.load_real(path, no_decode)[0]
    # every hit is the one mapping of the stored file: nothing is copied
    assert np.shares_memory(hit, again)
    assert int(hit.mean()) == 10 and hit.shape == (25, 50, 3)
    # the pipeline gets read-only images, stored or built
    for img in (built, hit):
        assert not img.flags.writeable
        with pytest.raises(ValueError, match='read-only'):
            img[0, 0, 0] = 1
    # no mapping to spare: hits are read into arrays of their own
    monkeypatch.setitem(image_cache_module._MAPPED, 'budget',
                        image_cache_module._MAPPED['count'])
    other = ImageCache(mode, (50, 50), cache_dir=str(root))
    read = other.load_real(path, no_decode)[0]
    assert not np.shares_memory(read, other.load_real(path, no_decode)[0])
    assert not read.flags.writeable
    np.testing.assert_array_equal(read, hit)


def test_ram_cache_too_large_names_the_key(tmp_path, pair_data,
                                           paired_helpers, mmssda_scope,
                                           monkeypatch):
    data = pair_data(tmp_path / 'd', num=2, size=(160, 96))
    ds = _dataset(data, paired_helpers, [])
    root = tmp_path / 'shm'
    root.mkdir()
    loader = LoadPairedImageFromFile(
        cache='ram', cache_scale=(64, 64), cache_dir=str(root))
    # 2 pairs at 64x38x3 need 4 * 7296 bytes
    monkeypatch.setattr(image_cache_module, '_mem_available',
                        lambda: int(4 * 7296 / 0.8) - 100)
    with pytest.raises(MemoryError, match=r"cache='disk'.*cache_scale"):
        loader(dict(ds.get_data_info(0), dataset=ds))
    monkeypatch.setattr(image_cache_module, '_mem_available',
                        lambda: int(4 * 7296 / 0.8) + 100)
    loader(dict(ds.get_data_info(0), dataset=ds))


def test_ram_cache_is_shared_with_workers(tmp_path, pair_data,
                                          paired_helpers, mmssda_scope):
    data = pair_data(tmp_path / 'd', num=4, size=(160, 96))
    root = tmp_path / 'shm'
    root.mkdir()
    pipeline = _with_cache(
        [dict(type='LoadPairedImageFromFile')], cache='ram',
        cache_scale=(64, 64), cache_dir=str(root))
    ds = _dataset(data, paired_helpers, pipeline)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=2, num_workers=2, collate_fn=lambda x: x,
        multiprocessing_context='fork')
    assert sum(len(b) for b in loader) == 4
    # the workers' entries serve this process: nothing is decoded here
    transform = ds.pipeline.transforms[0]
    transform._decode = lambda path: pytest.fail(f'decoded {path}')
    for i in range(4):
        assert ds[i]['img'].shape == (38, 64, 3)


def _dead_pid():
    return int(subprocess.run([sys.executable, '-c', 'import os; '
                               'print(os.getpid())'], capture_output=True,
                              text=True, timeout=60).stdout.strip())


def _write_entries(folder, names=('0' * 32 + '.npy', '0' * 32 + '.json')):
    """A cache entry folder as a run leaves it."""
    entry = folder / ('a' * 32)
    entry.mkdir(parents=True, mode=0o700)
    for name in names:
        (entry / name).write_bytes(b'entry')
    return entry


def test_ram_folder_removed_at_exit_leaving_foreign_files(tmp_path):
    """At exit the run removes the entries it wrote and its folder; a file
    it did not write stays, and so does the folder holding it."""
    clean, foreign = tmp_path / 'shm1', tmp_path / 'shm2'
    clean.mkdir()
    foreign.mkdir()
    code = ('import cv2, numpy as np, sys\n'
            'from mmssda.datasets import ImageCache\n'
            'img = sys.argv[3]\n'
            'cv2.imwrite(img, np.full((16, 16, 3), 9, np.uint8))\n'
            'for root in sys.argv[1:3]:\n'
            '    c = ImageCache("ram", (8, 8), cache_dir=root)\n'
            '    c.load_real(img, cv2.imread)\n'
            '    print(c.cache_dir)\n'
            'open(c.cache_dir + "/foreign.txt", "w").close()\n')
    out = subprocess.run(
        [sys.executable, '-c', code, str(clean), str(foreign),
         str(tmp_path / 'a.png')], capture_output=True, text=True,
        timeout=120, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert out.returncode == 0, out.stderr
    clean_dir, foreign_dir = out.stdout.strip().splitlines()[-2:]
    assert clean_dir.startswith(str(clean))
    assert not osp.exists(clean_dir)
    assert os.listdir(foreign_dir) == ['foreign.txt']


def test_ram_folder_is_private_and_not_predictable(tmp_path):
    root = tmp_path / 'shm'
    root.mkdir()
    # a link planted at the name the folder would have if named by pid
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    planted = root / f'mmssda-image-cache-{os.getpid()}'
    planted.symlink_to(elsewhere, target_is_directory=True)
    cache = ImageCache('ram', (8, 8), cache_dir=str(root))
    st = os.lstat(cache.cache_dir)
    assert stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == os.getuid()
    assert osp.dirname(cache.cache_dir) == str(root)
    assert osp.basename(cache.cache_dir).startswith(
        f'mmssda-image-cache-{os.getpid()}-')
    img = str(tmp_path / 'a.png')
    cv2.imwrite(img, np.full((16, 16, 3), 9, np.uint8))
    cache.load_real(img, cv2.imread)
    assert os.listdir(elsewhere) == []  # nothing went through the link
    assert planted.is_symlink()  # and the link is left alone


def test_links_inside_the_cache_are_not_followed(tmp_path):
    img = str(tmp_path / 'a.png')
    cv2.imwrite(img, np.full((100, 200, 3), 10, np.uint8))
    cache = ImageCache('disk', (50, 50), cache_dir=str(tmp_path / 'c'))
    folder, name = cache._entry_name(img, '')
    # entry files planted as links to a pre-filled image elsewhere
    os.makedirs(folder, mode=0o700)
    planted = tmp_path / 'planted.npy'
    np.save(planted, np.full((25, 50, 3), 200, np.uint8))
    meta = tmp_path / 'planted.json'
    meta.write_text('{"ori_shape": [100, 200], "ratio": 0.25}')
    os.symlink(planted, osp.join(folder, name + '.npy'))
    os.symlink(meta, osp.join(folder, name + '.json'))
    img_out = cache.load_real(img, cv2.imread)[0]
    assert int(img_out.mean()) == 10  # decoded, not the planted image
    assert not osp.islink(osp.join(folder, name + '.npy'))  # replaced
    assert int(np.load(planted).mean()) == 200  # the target is untouched
    # an entry folder planted as a link is refused, naming it
    other = ImageCache('disk', (40, 40), cache_dir=str(tmp_path / 'c2'))
    folder2, _ = other._entry_name(img, '')
    target = tmp_path / 'target'
    target.mkdir()
    os.symlink(target, folder2, target_is_directory=True)
    with pytest.raises(PermissionError, match='symbolic link') as err:
        other.load_real(img, cv2.imread)
    assert folder2 in str(err.value)
    assert os.listdir(target) == []


def test_replacing_a_stale_entry_keeps_foreign_files(tmp_path):
    path = str(tmp_path / 'a.png')
    cv2.imwrite(path, np.full((16, 16, 3), 10, np.uint8))
    cache = ImageCache('disk', (8, 8), cache_dir=str(tmp_path / 'c'))
    cache.load_real(path, cv2.imread)
    folder, _ = cache._entry_name(path, '')
    with open(osp.join(folder, 'notes.txt'), 'w') as f:
        f.write('keep me')
    stat_ = os.stat(path)
    os.utime(path, ns=(stat_.st_atime_ns, stat_.st_mtime_ns + 10**9))
    _, new = cache._entry_name(path, '')
    cache.load_real(path, cv2.imread)  # a miss: the stale entry goes
    assert sorted(os.listdir(folder)) == sorted(
        [new + '.json', new + '.npy', 'notes.txt'])


def test_disk_folder_must_be_private_and_real(tmp_path):
    made = ImageCache('disk', (8, 8), cache_dir=str(tmp_path / 'new' / 'c'))
    assert stat.S_IMODE(os.lstat(made.cache_dir).st_mode) == 0o700
    real = tmp_path / 'real'
    real.mkdir()
    link = tmp_path / 'link'
    link.symlink_to(real, target_is_directory=True)
    with pytest.raises(PermissionError, match='symbolic link') as err:
        ImageCache('disk', (8, 8), cache_dir=str(link))
    assert str(link) in str(err.value)
    shared = tmp_path / 'shared'
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match='chmod 700'):
        ImageCache('disk', (8, 8), cache_dir=str(shared))
    # an entry folder others can write to (they could pre-fill it)
    img = str(tmp_path / 'a.png')
    cv2.imwrite(img, np.full((16, 16, 3), 9, np.uint8))
    made.load_real(img, cv2.imread)
    folder, _ = made._entry_name(img, '')
    os.chmod(folder, 0o777)
    fresh = ImageCache('disk', (8, 8), cache_dir=made.cache_dir)
    with pytest.raises(PermissionError,
                       match=f'chmod -R go-w {made.cache_dir}'):
        fresh.load_real(img, cv2.imread)


def test_stale_run_folders_lose_only_their_entries(tmp_path):
    root = tmp_path / 'shm'
    root.mkdir()
    dead = _dead_pid()
    # a dead run's folder: its entries go, a foreign file stays
    stale = root / f'mmssda-image-cache-{dead}-abc123'
    stale.mkdir(mode=0o700)
    _write_entries(stale)
    (stale / 'notes.txt').write_text('keep me')
    # a dead run's folder with nothing else: removed
    empty = root / f'mmssda-image-cache-{dead}-def456'
    empty.mkdir(mode=0o700)
    _write_entries(empty)
    # a link named like a run folder: neither it nor its target is touched
    target = tmp_path / 'target'
    target.mkdir(mode=0o700)
    entry = _write_entries(target)
    (root / f'mmssda-image-cache-{dead}-ghi789').symlink_to(
        target, target_is_directory=True)
    # the old, pid-only name is not this version's: left alone
    old = root / f'mmssda-image-cache-{dead}'
    old.mkdir(mode=0o700)
    _write_entries(old)
    ImageCache('ram', (8, 8), cache_dir=str(root))
    assert os.listdir(stale) == ['notes.txt']
    assert not empty.exists()
    assert sorted(os.listdir(entry)) == ['0' * 32 + '.json', '0' * 32 +
                                         '.npy']
    assert os.listdir(old) == ['a' * 32]


def test_bad_mode():
    with pytest.raises(ValueError, match='`cache`'):
        LoadPairedImageFromFile(cache='gpu')
