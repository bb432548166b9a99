#!/usr/bin/env bash
# Bare-metal install on a Jetson (JetPack 6), no Docker: system packages, liblsl from source,
# rtdecode in PREFIX/venv, onnxruntime-gpu for JetPack with the TensorRT / CUDA providers checked
# (install-ort.sh stops naming the fix if they are missing), then `rtdecode doctor`.
# What is installed (index, versions, Python): deploy/jetson/versions.env.
# Run as root from a checkout:  sudo deploy/jetson/setup.sh [--ort-index URL | --ort-wheel FILE] [--prefix DIR]
# Then: sudo deploy/systemd/install-unit.sh ... and sudo deploy/jetson/prebuild-engines.sh (README.md)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PREFIX="/opt/rtdecode"
ORT_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --ort-index) ORT_ARGS+=(--index "$2"); shift 2 ;;
        --ort-wheel) ORT_ARGS+=(--wheel "$2"); shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (sudo)" >&2; exit 2; }
[ -f /etc/nv_tegra_release ] || echo "setup.sh: WARNING: /etc/nv_tegra_release not found; is this a Jetson?" >&2
# fail before the long steps when the board runs another JetPack than versions.env names
[ "${#ORT_ARGS[@]}" -gt 0 ] || "$HERE/select-index.sh" >/dev/null

"$ROOT/deploy/docker/system-deps.sh" --build-tools
"$HERE/build-liblsl.sh" --prefix /usr/local
export PYLSL_LIB=/usr/local/lib/liblsl.so
# no constraints: the pins are for the project's x86_64 CI (Python 3.11); JetPack's is 3.10
"$ROOT/deploy/docker/install.sh" --venv "$PREFIX/venv" --no-constraints
"$HERE/install-ort.sh" --venv "$PREFIX/venv" "${ORT_ARGS[@]}"
mkdir -p "$PREFIX/deploy"
cp -r "$ROOT/models" "$PREFIX/"
cp -r "$ROOT/deploy/configs" "$PREFIX/deploy/"
RTDECODE_MODELS="$PREFIX/models" "$PREFIX/venv/bin/rtdecode" doctor --lsl-timeout 0 || true
cat <<MSG
setup.sh: done. Next:
  sudo nvpmodel -m 0 && sudo jetson_clocks     # max clocks: lower, steadier latency
  sudo $ROOT/deploy/systemd/install-unit.sh --prefix $PREFIX --config $PREFIX/deploy/configs/hdsemg-gesture.toml
  sudo $HERE/prebuild-engines.sh --prefix $PREFIX  # TensorRT engines now, not at the first start
MSG
