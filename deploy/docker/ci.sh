#!/usr/bin/env bash
# CI step for the deployment recipe (called by .ci/run): what the Dockerfile does, without Docker.
# install.sh into a throwaway venv (CPU onnxruntime), then check.sh (doctor --json + every config).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$VENV")"' EXIT
"$ROOT/deploy/docker/install.sh" --venv "$VENV" --python "${PYTHON:-python3}"
# run from outside the checkout so the installed package (not the source tree) is what runs
(cd "$(dirname "$VENV")" && RTDECODE_MODELS="$ROOT/models" \
    "$ROOT/deploy/docker/check.sh" --bin "$VENV/bin" --configs "$ROOT/deploy/configs")
