"""``--cfg-options`` that take effect everywhere, or stop with the key to set.

A Python config file computes values from its top-level variables when
MMEngine parses it: ``train_cfg = dict(max_iters=max_iters)`` holds the
number, not the name. An override of ``max_iters`` on the command line
changes the top-level key only: training would run the parsed value while
the config dumped in the work dir records the new one.

:func:`config_derivations` reads the config file and its bases (their
syntax trees, without running them) and lists, for every top-level
variable, the key paths whose values were computed from it, followed
through helper variables (``detector = _base_.model`` then
``model = dict(detector=detector)``) and kept where the merged config still
has them. :func:`merge_cfg_options` merges the overrides and then, per
overridden top-level variable:

- ``img_scale``, ``num_classes``, ``loss_cls_weight`` and
  ``loss_obj_weight`` of a config that calls
  :func:`~mmssda.utils.scale_recipe` are re-derived by it: the override
  takes effect in every value that recipe derives;
- any other variable is accepted only if every key computed from it gets
  the override too: a copied value (``max_iters=max_iters``) must equal
  the new value after the merge, a computed one
  (``batch_size=source_per_batch + target_per_batch``) must be overridden
  as well; otherwise :class:`CfgOptionsError` names each key to set;
- a top-level key that nothing the runner builds uses, or that the config
  lacks, is refused (it would change nothing).

Keys the runner reads itself (:data:`RUNNER_KEYS`: ``model``,
``train_cfg``, ``load_from``, ...) are overridden as usual.

Example:
    >>> cfg = Config.fromfile('configs/ssda_yolov5s_city2foggy.py')
    >>> merge_cfg_options(cfg, {'max_iters': 100})
    Traceback (most recent call last):
    ...
    CfgOptionsError: --cfg-options max_iters=100 does not reach the
    values computed from max_iters when the config file was parsed: set
    train_cfg.max_iters=100 ...
    >>> merge_cfg_options(cfg, {'train_cfg.max_iters': 100})
"""
import ast
import copy
import difflib
import os.path as osp
from typing import (Any, Dict, Iterable, List, MutableMapping, NamedTuple,
                    Optional, Set, Tuple)

from .recipe_scaling import scale_recipe

BASE_KEY = '_base_'
#: Top-level keys that MMEngine 0.10.7's ``Runner`` (``from_cfg`` and the
#: methods that read ``self.cfg``), its hooks, and tools/train.py read
#: themselves; overriding them needs no derivation.
RUNNER_KEYS = frozenset((
    'activation_checkpointing', 'auto_scale_lr', 'cfg', 'compile',
    'custom_hooks', 'data_preprocessor', 'default_hooks', 'default_scope',
    'efficient_conv_bn_eval', 'env_cfg', 'experiment_name',
    'find_unused_parameters', 'launcher', 'load_from', 'log_level',
    'log_processor', 'model', 'model_wrapper_cfg', 'optim_wrapper',
    'param_scheduler', 'randomness', 'resume', 'runner_type', 'strategy',
    'sync_bn', 'test_cfg', 'test_dataloader', 'test_evaluator', 'train_cfg',
    'train_dataloader', 'val_cfg', 'val_dataloader', 'val_evaluator',
    'visualizer', 'work_dir'))
#: The variables :func:`~mmssda.utils.scale_recipe` derives values from.
RECIPE_VARIABLES = ('img_scale', 'num_classes', 'loss_cls_weight',
                    'loss_obj_weight')


class CfgOptionsError(ValueError):
    """A ``--cfg-options`` override that would not take effect."""


class Derivation(NamedTuple):
    """``target`` (a key path) was computed from ``source`` (a key path
    rooted at a top-level variable) in ``file``; ``copy``: the value is
    ``source``'s value itself, not an expression of it."""
    source: str
    target: str
    copy: bool
    file: str


class ConfigSyntax(NamedTuple):
    """What :func:`config_derivations` read from a config file chain."""
    files: List[str]
    variables: Set[str]
    derivations: List[Derivation]
    calls_scale_recipe: bool
    #: derivations whose target a later file replaces
    shadowed: List[Derivation]


def config_files(filename: str) -> List[str]:
    """The config file and its bases (recursively, each base before the
    file that names it); only Python files are read."""
    from mmengine.config import Config
    out: List[str] = []

    def visit(path: str) -> None:
        path = osp.abspath(path)
        if path in out or not path.endswith('.py'):
            return
        for base in Config._get_base_files(path):
            visit(Config._get_cfg_path(base, path)[0])
        out.append(path)

    visit(filename)
    return out


def _join(path: str, key: Any) -> str:
    return f'{path}.{key}' if path else str(key)


def _root(path: str) -> str:
    return path.split('.', 1)[0]


def _reference(node: ast.AST, variables: Set[str]) -> Optional[str]:
    """``'a.b'`` for ``a.b`` or ``_base_.a.b`` (``a`` a config variable),
    else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.reverse()
    if node.id == BASE_KEY:
        return '.'.join(parts) if parts else None
    if node.id in variables:
        return '.'.join([node.id, *parts])
    return None


def _assign_target(node: ast.AST) -> Optional[str]:
    """``'a.0.b'`` for an assignment target ``a[0].b``, else None."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(
                node.slice, ast.Constant):
            parts.append(str(node.slice.value))
            node = node.value
        else:
            break
    if not isinstance(node, ast.Name) or node.id == BASE_KEY:
        return None
    return '.'.join([node.id, *reversed(parts)])


class _Collector:
    """The derivations of one file's top-level assignments, and the key
    paths whose values the file replaces (not merges into)."""

    def __init__(self, variables: Set[str], file: str) -> None:
        self.variables = variables
        self.file = file
        self.out: List[Derivation] = []
        self.replaced: Set[str] = set()

    def add(self, source: str, target: str, copy_: bool) -> None:
        self.out.append(Derivation(source, target, copy_, self.file))

    def sources(self, node: ast.AST) -> Iterable[str]:
        ref = _reference(node, self.variables)
        if ref is not None:
            yield ref
            return
        for child in ast.iter_child_nodes(node):
            yield from self.sources(child)

    def coarse(self, node: ast.AST, path: str) -> None:
        """``path`` is computed from every reference in ``node``."""
        for source in self.sources(node):
            self.add(source, path, False)

    def value(self, node: ast.AST, path: str, copy_: bool = True) -> None:
        """Record where ``node``'s references end up under ``path``.

        MMEngine merges a dict into the base's dict of the same key and
        replaces anything else (lists included), so every value but a dict
        without ``_delete_=True`` replaces the base's.
        """
        ref = _reference(node, self.variables)
        if ref is not None:
            if ref != path:  # `x = _base_.x` keeps the base's x
                self.replaced.add(path)
                self.add(ref, path, copy_)
        elif isinstance(node, ast.Call) and isinstance(
                node.func, ast.Name) and node.func.id == 'dict':
            for arg in node.args:  # dict(other, key=...): other's keys
                self.coarse(arg, path)
            for keyword in node.keywords:
                if keyword.arg is None:  # dict(**other)
                    self.coarse(keyword.value, path)
                elif keyword.arg == '_delete_':
                    self.replaced.add(path)
                else:
                    self.value(keyword.value, _join(path, keyword.arg),
                               copy_)
        elif isinstance(node, ast.Dict):
            for key, item in zip(node.keys, node.values):
                if not isinstance(key, ast.Constant):  # {**other}, f(key)
                    self.coarse(item, path)
                elif key.value == '_delete_':
                    self.replaced.add(path)
                else:
                    self.value(item, _join(path, key.value), copy_)
        elif isinstance(node, (ast.List, ast.Tuple)):
            self.replaced.add(path)
            shifted = False  # after a *starred item the indices are unknown
            for i, item in enumerate(node.elts):
                shifted |= isinstance(item, ast.Starred)
                if shifted:
                    self.coarse(item, path)
                else:
                    self.value(item, _join(path, i), copy_)
        else:  # a constant or an expression of what it references
            self.replaced.add(path)
            self.coarse(node, path)


def _shadowed(d: Derivation, later_replaced: Iterable[str]) -> bool:
    """Whether a later file replaces ``d.target`` or a value above it."""
    return any(d.target == p or d.target.startswith(p + '.')
               for p in later_replaced)


def _is_scale_recipe_call(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call) and (
            getattr(n.func, 'id', None) == 'scale_recipe'
            or getattr(n.func, 'attr', None) == 'scale_recipe')
        for n in ast.walk(node))


def read_config_syntax(filename: str) -> ConfigSyntax:
    """The variables and direct derivations of a config file chain."""
    files = config_files(filename)
    trees = []
    for file in files:
        with open(file, encoding='utf-8') as f:
            trees.append(ast.parse(f.read(), filename=file))
    variables: Set[str] = set()
    for tree in trees:
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name) \
                            and target.id != BASE_KEY:
                        variables.add(target.id)
    collectors = []
    calls = False
    for file, tree in zip(files, trees):
        collector = _Collector(variables, file)
        for stmt in tree.body:
            calls |= _is_scale_recipe_call(stmt)
            if isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    path = _assign_target(target)
                    if path is not None:
                        collector.value(stmt.value, path)
        collectors.append(collector)
    derivations: List[Derivation] = []
    shadowed: List[Derivation] = []
    for i, collector in enumerate(collectors):
        later = [p for c in collectors[i + 1:] for p in c.replaced]
        for d in collector.out:
            if d.source != d.target:
                (shadowed if _shadowed(d, later) else derivations).append(d)
    return ConfigSyntax(files, variables, derivations, calls, shadowed)


def _get(tree: Any, path: str) -> Tuple[bool, Any]:
    """``(True, value)`` at ``path`` in a plain config tree, else
    ``(False, None)``."""
    node = tree
    for key in path.split('.') if path else []:
        if isinstance(node, MutableMapping) and key in node:
            node = node[key]
        elif isinstance(node, (list, tuple)) and key.lstrip('-').isdigit() \
                and -len(node) <= int(key) < len(node):
            node = node[int(key)]
        else:
            return False, None
    return True, node


def _rebase(path: str, old: str, new: str) -> Optional[str]:
    """``path`` with its prefix ``old`` replaced by ``new``, or None."""
    if path == old:
        return new
    if path.startswith(old + '.'):
        return new + path[len(old):]
    return None


def config_derivations(syntax: ConfigSyntax,
                       tree: MutableMapping) -> List[Derivation]:
    """Every key path of ``tree`` computed from a top-level variable.

    Direct derivations are chained through helper variables and kept only
    where ``tree`` (the merged config as a plain dict) has their target
    (and, for chained ones, their source).

    Args:
        syntax (ConfigSyntax): From :func:`read_config_syntax`.
        tree (MutableMapping): The merged config (``cfg.to_dict()``).

    Returns:
        list[Derivation]: ``source`` rooted at a top-level variable,
        ``target`` an existing key path.
    """
    known = {d for d in syntax.derivations if _get(tree, d.target)[0]}
    frontier = set(known)
    for _ in range(16):  # helper chains are a few steps long
        new = set()
        for d in frontier:
            for e in known:
                if _root(e.source) != _root(d.target):
                    continue
                # d lands inside what e reads: d reaches e's target too
                target = _rebase(d.target, e.source, e.target)
                if target is not None:
                    new.add(Derivation(d.source, target, d.copy and e.copy,
                                       d.file))
                    continue
                # e reads a part of d's target: that part of d's source
                source = _rebase(e.source, d.target, d.source)
                if source is not None:
                    new.add(Derivation(source, e.target, d.copy and e.copy,
                                       e.file))
        # both ends must be paths of the config (this also ends cycles
        # such as `x = dict(x, k=x.k)`)
        new = {
            d
            for d in new - known if d.source != d.target
            and _get(tree, d.target)[0] and _get(tree, d.source)[0]
        }
        if not new:
            break
        known |= new
        frontier = new
    return sorted(known)


def _shown_path(file: str) -> str:
    """``file`` relative to the working directory if it is below it."""
    rel = osp.relpath(file)
    return file if rel.startswith('..') else rel


def _format(value: Any) -> str:
    return repr(tuple(value)) if isinstance(value, tuple) else repr(value)


def _covered(path: str, options: Dict[str, Any]) -> bool:
    """Whether an override sets ``path`` or a dict above it."""
    return any(path == key or path.startswith(key + '.') for key in options)


def _problems(key: str, options: Dict[str, Any],
              derivations: List[Derivation], tree: MutableMapping,
              runner_roots: Set[str]) -> Tuple[bool, List[str]]:
    """Whether ``key``'s variable reaches anything the runner builds, and
    the keys its override does not reach (``tree``: the merged config)."""
    reached = False
    out: List[str] = []
    for d in derivations:
        if _root(d.target) not in runner_roots:
            continue
        required = _rebase(key, d.source, d.target)
        # what the variable holds after the merge (a dict value is merged)
        expected = _get(tree, key)
        if required is None:  # the override sets a dict above the source
            if _rebase(d.source, key, '') is None:
                continue
            required = d.target
            expected = _get(tree, d.source)
        reached = True
        where = f'(computed from {d.source} in {_shown_path(d.file)})'
        if d.copy and expected[0]:
            found = _get(tree, required)
            if not (found[0] and found[1] == expected[1]):
                out.append(f'{required}={_format(expected[1])}')
        elif not _covered(required, options):
            out.append(f'{required} {where}')
    return reached, sorted(set(out))


def check_cfg_options(cfg: MutableMapping, options: Dict[str, Any],
                      syntax: ConfigSyntax,
                      before: MutableMapping) -> None:
    """Raise :class:`CfgOptionsError` for overrides that do not take effect.

    Args:
        cfg (MutableMapping): The config after merging ``options`` (the
            recipe variables already re-derived).
        options (dict): ``--cfg-options`` (dotted keys to values).
        syntax (ConfigSyntax): The config files' syntax
            (:func:`read_config_syntax`).
        before (MutableMapping): The config before the merge, as a plain
            dict.
    """
    to_dict = getattr(cfg, 'to_dict', None)
    tree = to_dict() if callable(to_dict) else dict(cfg)
    derivations = config_derivations(syntax, before)
    runner_roots = set(RUNNER_KEYS)
    if syntax.calls_scale_recipe:
        runner_roots |= set(RECIPE_VARIABLES)
    errors = []
    for key, value in options.items():
        root = _root(key)
        if root in RUNNER_KEYS:
            continue
        if root in RECIPE_VARIABLES and syntax.calls_scale_recipe:
            continue  # re-derived by scale_recipe
        shown = f'--cfg-options {key}={_format(value)}'
        if root not in before:
            close = difflib.get_close_matches(root, list(before), n=1)
            hint = f'; did you mean {close[0]}?' if close else '.'
            errors.append(f'{shown}: the config has no top-level key '
                          f'{root}, and the runner does not read one{hint}')
            continue
        reached, missing = _problems(key, options, derivations, tree,
                                     runner_roots)
        if not reached:
            replaced = sorted({
                d.target
                for d in syntax.shadowed if _root(d.source) == root
                and _root(d.target) in runner_roots and _get(tree, d.target)[0]
            })
            hint = ('; a later config file sets what it computed: set '
                    + ', '.join(replaced) + ' instead.') if replaced else (
                        ' (what the config files computed from it was '
                        'replaced or deleted, or it is read only while they '
                        'are parsed); set the keys the runner reads instead.')
            errors.append(
                f'{shown} changes nothing: no part of the config that the '
                f'runner builds uses {root}{hint}')
        elif missing:
            errors.append(
                f'{shown} does not reach the values computed from {root} '
                'when the config file was parsed: set '
                + ', '.join(missing) + ' instead or as well.')
    if errors:
        raise CfgOptionsError('\n'.join(errors))


def merge_cfg_options(cfg,
                      options: Optional[Dict[str, Any]],
                      syntax: Optional[ConfigSyntax] = None):
    """Merge ``--cfg-options`` so that each takes effect, or raise.

    Args:
        cfg (Config): A config read by ``Config.fromfile`` (its
            ``filename`` names the file whose syntax is read).
        options (dict, optional): Dotted keys to values, as
            ``DictAction`` parses them. None or empty: nothing to do.
        syntax (ConfigSyntax, optional): ``read_config_syntax(
            cfg.filename)``, if already read. Defaults to None (read here).

    Returns:
        Config: ``cfg``, merged (and re-derived by
        :func:`~mmssda.utils.scale_recipe` where a recipe variable was
        overridden in a config that calls it).

    Raises:
        CfgOptionsError: An override that would not take effect, with the
            keys to set instead.
    """
    if not options:
        return cfg
    before = copy.deepcopy(cfg.to_dict())
    cfg.merge_from_dict(options)
    if syntax is None:
        filename = getattr(cfg, 'filename', None)
        if not filename or not osp.isfile(filename):
            return cfg  # a config built in code: nothing was parsed
        syntax = read_config_syntax(filename)
    if syntax.calls_scale_recipe and any(
            _root(key) in RECIPE_VARIABLES for key in options):
        scale_recipe(cfg)
        # values the user set explicitly win over the re-derived ones (the
        # train loop refuses them if they do not follow img_scale)
        cfg.merge_from_dict({
            key: value
            for key, value in options.items()
            if _root(key) not in RECIPE_VARIABLES
        })
    check_cfg_options(cfg, options, syntax, before)
    return cfg
