#!/usr/bin/env bash
# Install the tested OpenMMLab stack and mmssda (editable) into the current
# Python environment. Safe to run repeatedly: when everything already imports
# at the pinned versions it returns in a few seconds.
#
# Usage: bash tools/install.sh [--with-tests] [--build-mmcv]
#   --with-tests   also install the test requirements (pytest, onnx,
#                  onnxruntime)
#   --build-mmcv   build mmcv from source even if a prebuilt wheel is found
#
# Environment:
#   PYTHON           interpreter to install into (default: python3)
#   PIP_FIND_LINKS   space-separated wheel directories searched for a prebuilt
#                    mmcv wheel before building one (pip honours it too)
#   MMSSDA_CACHE     where a wheel built here is cached for the next run
#                    (default: ~/.cache/mmssda)
#   MAX_JOBS         parallel compile jobs for the mmcv build (default: nproc)
#
# What it does, in order (versions come from requirements/stack.txt):
#   1. torch: an existing torch is kept (a CUDA build must not be replaced);
#      the pinned CPU torch is installed only when none imports.
#   2. setuptools with pkg_resources (mmengine 0.10.7 and the mmcv sdist need it).
#   3. mmcv with compiled ops: reuse a wheel from PIP_FIND_LINKS, ../shared/wheels
#      or the cache if it imports against this torch; otherwise build one from
#      the PyPI sdist (about 35 CPU-minutes: 18 minutes on 2 idle cores) and
#      cache it.
#   4. mmengine, mmdet, mmyolo, albumentations, pycocotools, then mmssda.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
STACK="$ROOT/requirements/stack.txt"
CACHE=${MMSSDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmssda}
WITH_TESTS=0
BUILD_MMCV=0
for arg in "$@"; do
    case "$arg" in
        --with-tests) WITH_TESTS=1 ;;
        --build-mmcv) BUILD_MMCV=1 ;;
        *) echo "install.sh: unknown argument '$arg'" >&2; exit 2 ;;
    esac
done

log() { echo "[mmssda install] $*"; }
pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
# requirement line for a package from the stack file, e.g. "mmdet==3.3.0"
req() { grep -E "^$1([=<>!~ ]|$)" "$STACK" | head -n 1; }
pinned() { req "$1" | sed -E 's/^[^=]+==//'; }

TORCH_VERSION=$(pinned torch)
MMCV_VERSION=$(pinned mmcv)

# --- 0. fast path: everything imports at the pinned versions ---------------
stack_ok() {
    MMSSDA_ROOT="$ROOT" MMSSDA_STACK="$STACK" MMSSDA_TESTS="$WITH_TESTS" \
    "$PY" - <<'EOF' 2>/dev/null
import os, sys
# Not the current folder ('' on stdin): tools/*.py do not see it either, so
# a checkout there must not pass for the installed mmssda.
sys.path = [p for p in sys.path if p not in ('', os.getcwd())]
from importlib.metadata import version
import mmcv.ops, mmdet, mmyolo, albumentations, pycocotools  # noqa
import tensorboard  # noqa
import mmssda
if os.environ['MMSSDA_TESTS'] == '1':
    import pytest, onnx, onnxruntime  # noqa
from packaging.requirements import Requirement
for line in open(os.environ['MMSSDA_STACK']):
    line = line.split('#')[0].strip()
    if not line:
        continue
    req = Requirement(line)
    # an existing torch is kept (step 1); every other line must hold
    if req.name != 'torch' and not req.specifier.contains(
            version(req.name), prereleases=True):
        sys.exit(1)
root = os.path.realpath(os.environ['MMSSDA_ROOT'])
sys.exit(0 if os.path.realpath(mmssda.__file__).startswith(root) else 1)
EOF
}
if [ "$BUILD_MMCV" = 0 ] && stack_ok; then
    log "the stack and mmssda already import at the pinned versions; nothing to do"
    exit 0
fi

# --- 1. torch ----------------------------------------------------------------
if "$PY" -c 'import torch' 2>/dev/null; then
    log "keeping the installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
    log "no torch found: installing torch==$TORCH_VERSION"
    pip_install "torch==$TORCH_VERSION" "$(req setuptools)"
fi
TORCH_INSTALLED=$("$PY" -c 'import torch; print(torch.__version__)')
# keep pip from replacing torch or mmcv while it resolves the rest
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_INSTALLED" > "$CONSTRAINTS"

# --- 2. setuptools with pkg_resources ---------------------------------------
if ! "$PY" -W ignore -c 'import pkg_resources' 2>/dev/null; then
    pip_install -c "$CONSTRAINTS" "$(req setuptools)"
fi

# --- 3. mmcv with compiled ops ----------------------------------------------
mmcv_ok() {
    "$PY" - "$MMCV_VERSION" <<'EOF' 2>/dev/null
import sys
import mmcv, mmcv.ops  # noqa: loads the compiled extension against this torch
sys.exit(0 if mmcv.__version__ == sys.argv[1] else 1)
EOF
}
try_wheel() {  # install a wheel (mmengine & co. come with it), check it loads
    log "trying $1"
    pip_install --no-deps --force-reinstall "$1" \
        && pip_install -c "$CONSTRAINTS" "$1" "$(req mmengine)" && mmcv_ok
}
WHEEL_CACHE="$CACHE/wheels/torch-$TORCH_INSTALLED"
if [ "$BUILD_MMCV" = 0 ] && mmcv_ok; then
    log "keeping the installed mmcv $MMCV_VERSION"
else
    found=0
    # the shared wheel was built against torch $TORCH_VERSION only
    dirs="${PIP_FIND_LINKS:-} $WHEEL_CACHE"
    if [ "$TORCH_INSTALLED" = "$TORCH_VERSION+cpu" ] || [ "$TORCH_INSTALLED" = "$TORCH_VERSION" ]; then
        dirs="$dirs $ROOT/../shared/wheels"
    fi
    [ "$BUILD_MMCV" = 1 ] && dirs=""
    for dir in $dirs; do
        for whl in "$dir"/mmcv-"$MMCV_VERSION"-*.whl; do
            [ -f "$whl" ] || continue
            if try_wheel "$whl"; then found=1; break 2; fi
        done
    done
    if [ "$found" = 0 ]; then
        log "no usable mmcv $MMCV_VERSION wheel: building it from source (about 35 CPU-minutes: 18 min on 2 idle cores)"
        build=$(mktemp -d)
        pip_install -c "$CONSTRAINTS" ninja "$(req setuptools)" wheel \
            "$(req mmengine)"
        # its setup.py imports pkg_resources and torch: no build isolation
        "$PY" -m pip download --disable-pip-version-check -q --no-deps \
            --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" \
            -d "$build"
        tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
        src="$build/mmcv-$MMCV_VERSION"
        # torch >= 2.1 headers need C++17; mmcv 2.0.1 hard-codes C++14
        sed -i 's/-std=c++14/-std=c++17/g' "$src/setup.py"
        mkdir -p "$WHEEL_CACHE"
        MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
            "$PY" -m pip wheel --disable-pip-version-check --no-deps \
            --no-build-isolation -w "$WHEEL_CACHE" "$src"
        rm -rf "$build"
        try_wheel "$WHEEL_CACHE"/mmcv-"$MMCV_VERSION"-*.whl || {
            echo "install.sh: the mmcv wheel built in $WHEEL_CACHE does not import" >&2
            exit 1
        }
    fi
fi
echo "mmcv==$MMCV_VERSION" >> "$CONSTRAINTS"

# --- 4. the rest of the stack and mmssda ------------------------------------
log "installing $(grep -E '^(mmengine|mmdet|mmyolo|albumentations|pycocotools)==|^tensorboard' "$STACK" | tr '\n' ' ')"
pip_install -c "$CONSTRAINTS" -r <(grep -vE '^(torch|mmcv)==' "$STACK")
extras=""
[ "$WITH_TESTS" = 1 ] && extras="[tests]"
pip_install -c "$CONSTRAINTS" --no-build-isolation -e "$ROOT$extras"

"$PY" -c 'import mmssda, mmyolo, mmdet, mmcv.ops' \
    && log "done: mmssda, mmyolo, mmdet and mmcv.ops import"
