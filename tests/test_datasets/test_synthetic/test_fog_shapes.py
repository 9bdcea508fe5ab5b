"""The fog-shapes generator: determinism, layout, labels vs drawn pixels."""
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmssda.datasets.synthetic import (FOG_SHAPES_CLASSES,
                                       generate_fog_shapes,
                                       render_shapes_scene)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
SPLITS = ('source', 'target', 'target_val', 'source_val')
FAKES = {'source': 'source_fake', 'target': 'target_fake'}
SIZE = 96
SMALL = dict(num_source=5, num_target=5, num_val=3, num_source_val=2,
             img_size=SIZE)


@pytest.fixture(scope='module')
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp('fog_shapes')
    out = {}
    for name, kwargs in [('a', dict(seed=0, save_masks=True)),
                         ('b', dict(seed=0)),
                         ('c', dict(seed=1)),
                         ('clear', dict(seed=0, fog=False))]:
        out[name] = str(root / name)
        generate_fog_shapes(out[name], **kwargs, **SMALL)
    return out


def _files(root, sub):
    folder = osp.join(root, sub)
    return sorted(os.listdir(folder)) if osp.isdir(folder) else []


def _read_labels(path):
    with open(path) as f:
        return np.array([[float(v) for v in ln.split()] for ln in f],
                        np.float64).reshape(-1, 5)


def test_layout_counts_and_meta(sets):
    root = sets['a']
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['classes'] == list(FOG_SHAPES_CLASSES)
    assert meta['seed'] == 0 and meta['img_size'] == [SIZE, SIZE]
    expected = dict(source=5, target=5, target_val=3, source_val=2)
    for split in SPLITS:
        images = _files(root, f'{split}/images')
        labels = _files(root, f'{split}/labels')
        assert len(images) == expected[split] == \
            meta['counts'][split]['images']
        assert [osp.splitext(n)[0] for n in images] == \
            [osp.splitext(n)[0] for n in labels]
        assert all(n.startswith(f'{split}_') and n.endswith('.jpg')
                   for n in images)
        lines = [_read_labels(osp.join(root, split, 'labels', n))
                 for n in labels]
        num = sum(len(v) for v in lines)
        assert num == meta['counts'][split]['instances'] > 0
        per_class = np.bincount(
            np.concatenate([v[:, 0] for v in lines]).astype(int),
            minlength=3)
        assert per_class.tolist() == list(
            meta['counts'][split]['per_class'].values())
        # COCO json: the same boxes
        with open(osp.join(root, 'annotations', f'{split}.json')) as f:
            coco = json.load(f)
        assert [c['id'] for c in coco['categories']] == [1, 2, 3]
        assert [im['file_name'] for im in coco['images']] == images
        assert len(coco['annotations']) == num
        for im, lab in zip(coco['images'], lines):
            anns = [a for a in coco['annotations']
                    if a['image_id'] == im['id']]
            assert len(anns) == len(lab)
            for a, (c, cx, cy, w, h) in zip(anns, lab):
                assert a['category_id'] == int(c) + 1
                x, y, bw, bh = a['bbox']
                np.testing.assert_allclose(
                    [x + bw / 2, y + bh / 2, bw, bh],
                    np.array([cx, cy, w, h]) * SIZE, atol=1e-3)
                assert 0 < a['area'] <= bw * bh
        # images are readable, of the declared size
        img = cv2.imread(osp.join(root, split, 'images', images[0]))
        assert img.shape == (SIZE, SIZE, 3)
    for split, fake in FAKES.items():
        assert _files(root, f'{fake}/images') == \
            _files(root, f'{split}/images')
        assert meta['counts'][fake]['images'] == expected[split]


def test_labels_are_tight_boxes_of_visible_masks(sets):
    root = sets['a']
    checked = 0
    for split in SPLITS:
        for name in _files(root, f'{split}/labels'):
            stem = osp.splitext(name)[0]
            labels = _read_labels(osp.join(root, split, 'labels', name))
            mask = cv2.imread(
                osp.join(root, split, 'masks', stem + '.png'),
                cv2.IMREAD_UNCHANGED)
            assert mask.shape == (SIZE, SIZE)
            assert mask.max() == len(labels)
            for k, (c, cx, cy, w, h) in enumerate(labels):
                assert int(c) == c and 0 <= c < len(FOG_SHAPES_CLASSES)
                ys, xs = np.nonzero(mask == k + 1)
                tight = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                box = np.array([cx - w / 2, cy - h / 2, cx + w / 2,
                                cy + h / 2]) * SIZE
                np.testing.assert_allclose(box, tight, atol=1.0)
                assert box.min() >= -1e-3 and box.max() <= SIZE + 1e-3
                checked += 1
    assert checked > 10


def test_scene_boxes_match_drawn_pixels():
    overlapping = 0
    for i in range(40):
        scene = render_shapes_scene(np.random.default_rng(i), SIZE)
        img, bg, ids = scene['img'], scene['background'], scene['instance_map']
        assert img.shape == bg.shape == (SIZE, SIZE, 3)
        assert img.dtype == np.uint8 and ids.shape == (SIZE, SIZE)
        # nothing is drawn outside the instance masks ...
        np.testing.assert_array_equal(img[ids == 0], bg[ids == 0])
        changed = np.any(img != bg, axis=2)
        boxes = scene['bboxes']
        assert len(boxes) == len(scene['labels']) == ids.max()
        for k, box in enumerate(boxes):
            inside = ids == k + 1
            # ... and the masks are drawn: object pixels differ from the
            # background, and those pixels give the label box
            assert changed[inside].mean() > 0.9
            ys, xs = np.nonzero(inside & changed)
            np.testing.assert_allclose(
                box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                atol=1.0)
            for other in boxes[k + 1:]:
                if (min(box[2], other[2]) > max(box[0], other[0]) and
                        min(box[3], other[3]) > max(box[1], other[1])):
                    overlapping += 1
        # the depth map: ground plane, far at the top
        assert scene['depth'][0].min() > scene['depth'][-1].max()
    assert overlapping > 0, 'no occlusion in 40 scenes'


def test_same_seed_is_byte_identical_other_seed_differs(sets):
    a, b, c = sets['a'], sets['b'], sets['c']
    for sub in [f'{s}/labels' for s in SPLITS] + \
            [f'{s}/images' for s in [*SPLITS, *FAKES.values()]]:
        names = _files(a, sub)
        assert names == _files(b, sub) and names
        for name in names:
            pa, pb = osp.join(a, sub, name), osp.join(b, sub, name)
            if sub.endswith('labels'):
                with open(pa, 'rb') as fa, open(pb, 'rb') as fb:
                    assert fa.read() == fb.read(), pa
            else:
                np.testing.assert_array_equal(cv2.imread(pa), cv2.imread(pb))
    for split in SPLITS:
        with open(osp.join(a, 'annotations', f'{split}.json')) as fa, \
                open(osp.join(b, 'annotations', f'{split}.json')) as fb:
            assert fa.read() == fb.read()
    differ = [
        not np.array_equal(cv2.imread(osp.join(a, 'source/images', n)),
                           cv2.imread(osp.join(c, 'source/images', n)))
        for n in _files(a, 'source/images')
    ]
    assert all(differ)


def test_source_and_target_are_different_scenes(sets):
    clear = sets['clear']
    for i in range(3):
        src = cv2.imread(f'{clear}/source/images/source_{i:06d}.jpg')
        tgt = cv2.imread(f'{clear}/target/images/target_{i:06d}.jpg')
        assert np.abs(src.astype(int) - tgt).mean() > 10


def test_fog_reduces_contrast_of_the_same_scenes(sets):
    """Fog on/off: the same target scenes, with less contrast in fog."""
    fog, clear = sets['a'], sets['clear']
    # fog only touches the target splits, and not their scenes or labels
    for name in _files(fog, 'source/images'):
        np.testing.assert_array_equal(
            cv2.imread(osp.join(fog, 'source/images', name)),
            cv2.imread(osp.join(clear, 'source/images', name)))
    for split in ('target', 'target_val'):
        for name in _files(fog, f'{split}/labels'):
            with open(osp.join(fog, split, 'labels', name)) as f1, \
                    open(osp.join(clear, split, 'labels', name)) as f2:
                assert f1.read() == f2.read()
        for name in _files(fog, f'{split}/images'):
            foggy = cv2.imread(osp.join(fog, split, 'images', name))
            plain = cv2.imread(osp.join(clear, split, 'images', name))
            foggy, plain = foggy.astype(np.float64), plain.astype(np.float64)
            # Contrast along rows (equal depth of the background) and
            # detail contrast fall; the global std need not (a dark sky
            # turns into bright airlight above a less fogged ground).
            row_std = [x.std(axis=1).mean() for x in (foggy, plain)]
            assert row_std[0] < 0.9 * row_std[1]
            detail = [np.std(x - cv2.GaussianBlur(x, (0, 0), 2))
                      for x in (foggy, plain)]
            assert detail[0] < 0.9 * detail[1]
            # the airlight is light grey: the image gets brighter
            assert foggy.mean() > plain.mean()


def test_refuses_non_empty_dir_and_overwrites_own_files(tmp_path):
    out = tmp_path / 'data'
    out.mkdir()
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not empty'):
        generate_fog_shapes(str(out), num_source=1, num_target=1, num_val=1,
                            img_size=64)
    assert sorted(os.listdir(out)) == ['notes.txt']
    generate_fog_shapes(str(out), num_source=3, num_target=2, num_val=1,
                        img_size=64, overwrite=True)
    # a smaller set replaces the generated files, leaves none stale and
    # keeps the user's file
    generate_fog_shapes(str(out), num_source=1, num_target=1, num_val=1,
                        img_size=64, overwrite=True)
    assert (out / 'notes.txt').read_text() == 'mine'
    assert _files(str(out), 'source/images') == ['source_000000.jpg']
    assert _files(str(out), 'source_fake/images') == ['source_000000.jpg']
    assert _files(str(out), 'source/labels') == ['source_000000.txt']


def test_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'generate_fog_shapes_cli',
        osp.join(REPO, 'tools', 'misc', 'generate_fog_shapes.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'cli')
    argv = [out, '--num-source', '2', '--num-target', '2', '--num-val', '1',
            '--img-size', '80', '64', '--seed', '3']
    assert tool.main(argv) == 0
    assert 'target_val' in capsys.readouterr().out
    with open(osp.join(out, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['img_size'] == [80, 64] and meta['seed'] == 3
    assert cv2.imread(osp.join(out, 'target/images/target_000001.jpg')
                      ).shape == (64, 80, 3)
    with pytest.raises(SystemExit, match='not empty'):
        tool.main(argv)
