import mmcv
import mmdet
import mmengine
import mmyolo
from mmengine.utils import digit_version

from .version import __version__, version_info

# The ranges this release is tested with; tools/install.sh pins exact
# versions inside them (requirements/stack.txt).
_REQUIRED = {
    'mmcv': (mmcv.__version__, '2.0.0rc4', '2.1.0'),
    'mmengine': (mmengine.__version__, '0.10.0', '0.11.0'),
    'mmdet': (mmdet.__version__, '3.3.0', '3.4.0'),
    'mmyolo': (mmyolo.__version__, '0.6.0', '0.7.0'),
}


def _check_versions() -> None:
    for name, (found, low, high) in _REQUIRED.items():
        if not digit_version(low) <= digit_version(found) < \
                digit_version(high):
            raise ImportError(
                f'mmssda needs {name}>={low},<{high} but {name}=={found} is '
                'installed; run `bash tools/install.sh` to install the '
                'tested stack.')


_check_versions()

__all__ = ['__version__', 'version_info']
