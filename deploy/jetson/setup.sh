#!/usr/bin/env bash
# Bare-metal install on a Jetson (JetPack 6), no Docker: system packages, liblsl from source,
# rtdecode + onnxruntime-gpu for JetPack in /opt/rtdecode/venv, then `rtdecode doctor`.
# Run as root from a checkout:  sudo deploy/jetson/setup.sh [--ort-index URL | --ort-wheel FILE]
# Then install the service:     sudo deploy/systemd/install-unit.sh --config deploy/configs/hdsemg-gesture.toml
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ORT_INDEX="https://pypi.jetson-ai-lab.dev/jp6/cu126"
ORT_PACKAGE="onnxruntime-gpu"
PREFIX="/opt/rtdecode"
while [ $# -gt 0 ]; do
    case "$1" in
        --ort-index) ORT_INDEX="$2"; shift 2 ;;
        --ort-wheel) ORT_PACKAGE="$2"; ORT_INDEX=""; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        *) echo "setup.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (sudo)" >&2; exit 2; }
[ -f /etc/nv_tegra_release ] || echo "setup.sh: WARNING: /etc/nv_tegra_release not found; is this a Jetson?" >&2

"$ROOT/deploy/docker/system-deps.sh" --build-tools
"$ROOT/deploy/jetson/build-liblsl.sh" --prefix /usr/local
export PYLSL_LIB=/usr/local/lib/liblsl.so
PIP_EXTRA_INDEX_URL="$ORT_INDEX" "$ROOT/deploy/docker/install.sh" --venv "$PREFIX/venv" \
    --ort-package "$ORT_PACKAGE" --no-constraints
mkdir -p "$PREFIX"
cp -r "$ROOT/models" "$PREFIX/"
mkdir -p "$PREFIX/deploy" && cp -r "$ROOT/deploy/configs" "$PREFIX/deploy/"
RTDECODE_MODELS="$PREFIX/models" "$PREFIX/venv/bin/rtdecode" doctor || true
cat <<MSG
setup.sh: done. Next:
  sudo nvpmodel -m 0 && sudo jetson_clocks     # max clocks: lower, steadier latency
  sudo $ROOT/deploy/systemd/install-unit.sh --prefix $PREFIX --config $PREFIX/deploy/configs/hdsemg-gesture.toml
MSG
