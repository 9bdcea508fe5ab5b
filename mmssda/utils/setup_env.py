import datetime
import warnings

from mmengine import DefaultScope

from .checkpoint import install_safe_checkpoint_loaders


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmssda's, MMYOLO's and MMDetection's modules.

    Importing the packages runs their ``@register_module`` decorators. It
    also (re-)registers mmssda's checkpoint loaders for every scheme of
    MMEngine's ``CheckpointLoader`` (see :mod:`mmssda.utils.checkpoint`):
    ``load_from``, ``resume`` and ``load_checkpoint`` then load local files,
    URLs and model zoo names with ``torch.load(weights_only=True)`` and an
    allow-list of the types MMEngine writes, never unpickling code.

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``'mmssda'``, so that unscoped types in configs resolve through
            mmssda, then MMYOLO, then MMEngine. Defaults to True.
    """
    import mmdet.engine  # noqa: F401
    import mmdet.visualization  # noqa: F401
    import mmyolo.datasets  # noqa: F401
    import mmyolo.engine  # noqa: F401
    import mmyolo.models  # noqa: F401

    import mmssda.datasets  # noqa: F401
    import mmssda.engine  # noqa: F401
    import mmssda.models  # noqa: F401

    install_safe_checkpoint_loaders()

    if not init_default_scope:
        return
    never_created = DefaultScope.get_current_instance() is None \
        or not DefaultScope.check_instance_created('mmssda')
    if never_created:
        DefaultScope.get_instance('mmssda', scope_name='mmssda')
        return
    current_scope = DefaultScope.get_current_instance()
    if current_scope.scope_name != 'mmssda':
        warnings.warn('The current default scope '
                      f'"{current_scope.scope_name}" is not "mmssda", '
                      '`register_all_modules` will force the current '
                      'default scope to be "mmssda". If this is not '
                      'expected, please set `init_default_scope=False`.')
        new_instance_name = f'mmssda-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_instance_name, scope_name='mmssda')
