"""The keys a config file chain computes from its top-level variables, read
from the files' syntax (helper chains, later files, lists, cycles)."""
import textwrap

import pytest
from mmengine.config import Config

from mmssda.utils.config_overrides import (CfgOptionsError, config_derivations,
                                           merge_cfg_options,
                                           read_config_syntax)


@pytest.fixture
def chain(tmp_path):
    """A base and a child config file, without any package base."""
    (tmp_path / 'base.py').write_text(textwrap.dedent('''
        steps = 10
        width = 4
        extra = 1
        head = dict(width=width, depth=2)
        model = dict(type='M', head=head, total=width * 2)
        pipeline = [dict(type='A', n=steps), dict(type='B')]
        train_dataloader = dict(pipeline=[*pipeline, dict(type='C', n=extra)])
        train_cfg = dict(max_iters=steps, val_interval=steps)
        test_pipeline = [dict(type='P', meta=('a', ))]
    '''))
    (tmp_path / 'child.py').write_text(textwrap.dedent('''
        _base_ = './base.py'
        steps = 20
        train_cfg = dict(max_iters=steps, val_interval=5)
        pack = _base_.test_pipeline[-1]
        test_pipeline = [dict(pack, meta=(*pack.meta, 'b'))]
        test_dataloader = dict(pipeline=test_pipeline)
    '''))
    return str(tmp_path / 'child.py')


def exists(tree, path):
    for key in path.split('.'):
        if isinstance(tree, dict) and key in tree:
            tree = tree[key]
        elif isinstance(tree, list) and key.isdigit() and int(key) < len(
                tree):
            tree = tree[int(key)]
        else:
            return False
    return True


def test_derivations_follow_helpers_and_later_files(chain):
    cfg = Config.fromfile(chain)
    syntax = read_config_syntax(chain)
    derivations = config_derivations(syntax, cfg.to_dict())
    found = {(d.source, d.target, d.copy) for d in derivations}
    # through the helper `head`, a copy; an expression is not a copy
    assert ('width', 'model.head.width', True) in found
    assert ('width', 'model.total', False) in found
    # the child replaces train_cfg.val_interval with a constant
    assert ('steps', 'train_cfg.max_iters', True) in found
    assert not any(t == 'train_cfg.val_interval' for _, t, _ in found)
    # after a *starred item a list's indices are unknown: the whole list
    assert ('extra', 'train_dataloader.pipeline', False) in found
    assert ('pipeline', 'train_dataloader.pipeline', False) in found
    # `pack = _base_.test_pipeline[-1]` and `dict(pack, meta=pack.meta)`
    # form a cycle: followed only along paths the config has
    assert ('pack.meta', 'test_dataloader.pipeline.0.meta', False) in found
    for d in derivations:
        assert exists(cfg.to_dict(), d.source), d
        assert exists(cfg.to_dict(), d.target), d


def test_merge_refuses_or_accepts(chain):
    with pytest.raises(CfgOptionsError) as e:
        merge_cfg_options(Config.fromfile(chain), {'width': 8})
    assert 'set model.head.width=8, model.total (computed from width in ' \
        in str(e.value)
    # with every key computed from it: merged, nothing else changed
    cfg = merge_cfg_options(
        Config.fromfile(chain),
        {'width': 8, 'model.head.width': 8, 'model.total': 16})
    assert cfg.model.head.width == 8 and cfg.head.width == 4
    with pytest.raises(CfgOptionsError, match='did you mean steps'):
        merge_cfg_options(Config.fromfile(chain), {'stepz': 1})
