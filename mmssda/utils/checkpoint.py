"""Let ``torch.load(weights_only=True)`` read MMEngine checkpoints.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and refuses
any global it does not know. MMEngine 0.10.7 calls it without the argument,
so ``load_from`` and ``--resume`` fail on the types MMEngine itself writes:
the message hub's :class:`HistoryBuffer` (whose statistics methods pickle as
``getattr(HistoryBuffer, 'mean')``), numpy scalars and arrays. Rather than
turning the check off, this allow-lists exactly those, and maps
``builtins.getattr`` to a version that resolves only HistoryBuffer's own
statistics methods.
"""
import numpy as np
import torch
from mmengine.logging import HistoryBuffer


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods."""
    if obj is HistoryBuffer and name in HistoryBuffer._statistics_methods:
        return getattr(HistoryBuffer, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'mmssda refuses getattr({obj!r}, {name!r}) while loading a '
        'checkpoint: only HistoryBuffer statistics methods are allowed.')


def _numpy_globals() -> list:
    """numpy's pickle entry points and dtype classes, for numpy 1.x and 2.x."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = {
        type(np.dtype(t))
        for t in np.sctypeDict.values() if isinstance(t, type)
    }
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list the non-tensor objects MMEngine writes into checkpoints.

    Idempotent. A no-op on torch < 2.5, which has no (named) allow-list and,
    before 2.6, does not default to ``weights_only=True``.
    """
    serialization = torch.serialization
    if not hasattr(serialization, 'get_safe_globals'):
        return
    # Registering HistoryBuffer also fills its class-level method table,
    # which the restricted getattr consults.
    HistoryBuffer()
    serialization.add_safe_globals([
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        *_numpy_globals(),
    ])
