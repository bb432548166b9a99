#!/usr/bin/env bash
# Install rtdecode's runtime (no torch) into a virtual environment. The Dockerfile, the Jetson
# image and CI (.ci/run → deploy/docker/ci.sh) all run this script, so what the image does is tested.
#
# usage: deploy/docker/install.sh --venv DIR [--python PY] [--ort-package SPEC] [--no-constraints]
#   --venv DIR          virtual environment to create (or reuse)
#   --python PY         interpreter that creates it (default: python3)
#   --ort-package SPEC  ONNX Runtime to install: onnxruntime (default, CPU), onnxruntime-gpu[==X.Y.Z]
#                       (CUDA / TensorRT on x86_64) or a Jetson wheel (path or URL)
#   --no-constraints    do not pin versions with constraints.txt (platforms without those wheels)
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV=""
PY="python3"
ORT="onnxruntime"
CONSTRAINTS="$SRC/constraints.txt"

while [ $# -gt 0 ]; do
    case "$1" in
        --venv) VENV="$2"; shift 2 ;;
        --python) PY="$2"; shift 2 ;;
        --ort-package) ORT="$2"; shift 2 ;;
        --no-constraints) CONSTRAINTS=""; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$VENV" ] || { echo "install.sh: --venv DIR is required" >&2; exit 2; }

echo "install.sh: rtdecode from $SRC into $VENV (python: $PY, onnxruntime: $ORT)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# Python 3.10 needs older numpy / scipy / onnxruntime pins
if [ "$CONSTRAINTS" = "$SRC/constraints.txt" ] && \
   "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
    CONSTRAINTS="$SRC/constraints-py310.txt"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir -q)
[ -n "$CONSTRAINTS" ] && PIP+=(-c "$CONSTRAINTS")

# the package and its runtime dependencies (numpy, scipy, pyzmq, pylsl, pydantic, onnxruntime, pyxdf)
"${PIP[@]}" "$SRC"

if [ "$ORT" != "onnxruntime" ]; then
    # onnxruntime and onnxruntime-gpu install the same module: remove the CPU build first,
    # otherwise uninstalling it later would delete files of the GPU build
    "$VENV/bin/python" -m pip uninstall -y -q onnxruntime
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir -q "$ORT"
fi

"$VENV/bin/rtdecode" --version
"$VENV/bin/python" - <<'PY'
import onnxruntime as ort
from rtdecode.lsl import pylsl
print(f"install.sh: onnxruntime {ort.__version__} providers {ort.get_available_providers()}; "
      f"liblsl {pylsl.library_version()}")
PY
