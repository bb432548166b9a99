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
# the demo from this regular (non-editable) install: outside the checkout it runs on the model
# embedded in the package, inside it on ./models (no RTDECODE_MODELS either way)
(cd "$(dirname "$VENV")" && env -u RTDECODE_MODELS "$VENV/bin/rtdecode" demo --seconds 3 --quiet)
(cd "$ROOT" && env -u RTDECODE_MODELS "$VENV/bin/rtdecode" demo --seconds 3 --quiet)
