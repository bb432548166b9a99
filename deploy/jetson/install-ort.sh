#!/usr/bin/env bash
# Put onnxruntime-gpu for JetPack (CUDA + TensorRT execution providers) into a virtual
# environment made by deploy/docker/install.sh, in place of the CPU onnxruntime, then check that
# the build offers TensorRT and CUDA: stops (exit 1) naming the fix when it does not, so a
# CPU-only install never passes silently. Index, version and Python: deploy/jetson/versions.env.
# Dockerfile.jetson and setup.sh both run it.
# usage: deploy/jetson/install-ort.sh --venv DIR [--index URL] [--version X.Y.Z] [--wheel FILE]
#   --index URL    pip index to take onnxruntime-gpu from (default: select-index.sh for this board)
#   --version V    onnxruntime-gpu version (default: ORT_VERSION of versions.env)
#   --wheel FILE   install this wheel (path or URL) instead of the index
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/jetson/versions.env
. "$HERE/versions.env"
VENV=""
INDEX=""
VERSION="$ORT_VERSION"
WHEEL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --venv) VENV="$2"; shift 2 ;;
        --index) INDEX="$2"; shift 2 ;;
        --version) VERSION="$2"; shift 2 ;;
        --wheel) WHEEL="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "install-ort.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -x "$VENV/bin/python" ] || { echo "install-ort.sh: --venv DIR must be a virtual environment (deploy/docker/install.sh makes it)" >&2; exit 2; }
PY="$VENV/bin/python"

if [ -z "$WHEEL" ]; then
    # the index serves cp310 wheels: JetPack 6's python3
    have="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    if [ "$have" != "$PYTHON_VERSION" ]; then
        echo "install-ort.sh: $VENV runs Python $have; the JetPack $JETPACK wheels are for Python $PYTHON_VERSION." >&2
        echo "  Fix: make the venv with JetPack's python3 ($PYTHON_VERSION): deploy/docker/install.sh --python python$PYTHON_VERSION ..." >&2
        exit 3
    fi
    [ -n "$INDEX" ] || INDEX="$("$HERE/select-index.sh")"
fi

echo "install-ort.sh: $ORT_PACKAGE ${WHEEL:-$VERSION from $INDEX} into $VENV"
# onnxruntime and onnxruntime-gpu write the same module: remove both, then install only the GPU build
"$PY" -m pip uninstall -y -q onnxruntime "$ORT_PACKAGE" || true
if [ -n "$WHEEL" ]; then
    "$PY" -m pip install --disable-pip-version-check --no-cache-dir -q "$WHEEL"
else
    "$PY" -m pip install --disable-pip-version-check --no-cache-dir -q --extra-index-url "$INDEX" \
        "$ORT_PACKAGE==$VERSION"
fi

if ! "$VENV/bin/rtdecode" providers --require tensorrt,cuda; then
    echo "install-ort.sh: the installed onnxruntime lacks TensorRT / CUDA (see the Fix above)." >&2
    echo "  Check that the index matches this board (deploy/jetson/select-index.sh), or give a JetPack" >&2
    echo "  wheel with --wheel FILE. Not fixed, the decoders would run on the CPU." >&2
    exit 1
fi
echo "install-ort.sh: OK (next: rtdecode trt-build CONFIG on the board opens the model on TensorRT)"
