"""keep_large_buffers: freed image-sized buffers are reused, not
page-faulted anew."""
import subprocess
import sys

import pytest

# a data-pipeline-like allocation pattern: per sample a 4.9 MB canvas, a
# smaller output kept for a while, a temporary buffer
SCRIPT = '''
import resource, sys
import numpy as np
from mmssda.utils import keep_large_buffers
if sys.argv[1] == '1':
    assert keep_large_buffers()
keep = [np.ones(8_000_000, np.uint8) for _ in range(5)]
keep.clear()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    canvas = np.full((1280, 1280, 3), 114, np.uint8)
    keep.append(canvas[::2, ::2].copy())
    tmp = np.full((640, 640, 3), 1, np.uint8)
    if len(keep) > 4:
        keep.pop(0)
    del canvas, tmp
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / 40)
'''


def faults_per_sample(tuned: bool) -> float:
    out = subprocess.run([sys.executable, '-c', SCRIPT, str(int(tuned))],
                         capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return float(out.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='glibc mallopt')
def test_freed_buffers_are_reused():
    default = faults_per_sample(False)
    tuned = faults_per_sample(True)
    # glibc's defaults fault on most new canvases (about 60 faults per
    # sample here); tuned, the buffers come back from the heap
    assert default > 10
    assert tuned < default / 10
