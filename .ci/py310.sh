#!/usr/bin/env bash
# CI: the core on Python 3.10 (JetPack 6's Python), without the training extra (no torch).
# Installs with constraints-py310.txt, runs the tests that need no torch (torch tests skip with a
# reason) for the core paths, then a CLI smoke: replay a recording -> serve -> subscriber.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY310:-}" ]; then
    # the last runnable candidate wins: pyenv's own 3.10 builds over a python3.10 on the PATH
    for cand in "$(command -v python3.10 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10; do
        if [ -x "$cand" ] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
            PY310="$cand"
        fi
    done
fi
if [ -z "${PY310:-}" ] || ! "$PY310" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    echo "py310.sh: no Python 3.10 found (set PY310=/path/to/python3.10)" >&2
    exit 1
fi
VENV="${VENV310:-.venv-py310}"
make -s install-dev PYTHON="$PY310" VENV="$VENV"
"$VENV/bin/python" -c 'import importlib.util, sys; assert importlib.util.find_spec("torch") is None, "torch in the 3.10 venv"; print("py310.sh: Python", sys.version.split()[0], "without torch")'
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/unit \
    tests/integration/test_daemon_e2e.py tests/integration/test_safety_startup.py \
    tests/integration/test_bounds_burst.py tests/integration/test_faults_input.py \
    tests/integration/test_player.py tests/integration/test_zmq_pubsub.py
"$VENV/bin/python" .ci/smoke_replay.py
