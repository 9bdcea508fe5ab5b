import io
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

from mmssda.utils import allow_mmengine_checkpoint_globals


def _save(obj) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def test_weights_only_loads_message_hub_state():
    allow_mmengine_checkpoint_globals()
    hub = MessageHub('test_checkpoint_hub')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_scalar('train/loss', 0.25)
    hub.update_info('iter', 3)
    state = dict(
        message_hub=hub.state_dict(),
        meta=dict(seed=np.int64(3), arr=np.arange(3, dtype=np.float32)))
    loaded = torch.load(_save(state), weights_only=True)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(0.375)
    assert loaded['message_hub']['runtime_info']['iter'] == 3
    np.testing.assert_array_equal(loaded['meta']['arr'], np.arange(3))


class _Evil:

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_arbitrary_getattr_is_still_refused():
    allow_mmengine_checkpoint_globals()
    buffer = io.BytesIO()
    # protocol 2, as torch.save uses, with a getattr not on HistoryBuffer
    torch.save({'x': _Evil()}, buffer, pickle_protocol=2)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer, weights_only=True)


def test_unknown_class_is_still_refused():
    allow_mmengine_checkpoint_globals()

    with pytest.raises(pickle.UnpicklingError):
        torch.load(_save({'x': _Unknown()}), weights_only=True)


class _Unknown:
    pass
