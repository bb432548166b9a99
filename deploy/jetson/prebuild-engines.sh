#!/usr/bin/env bash
# Build the TensorRT engines of the service's config ahead, as the service user, into the
# service's cache (/var/cache/rtdecode/trt, as in deploy/systemd/rtdecode.service), so the
# daemon loads them on its first start instead of building for minutes. Run on the Jetson after
# deploy/systemd/install-unit.sh, and again after a JetPack / TensorRT / model / fp16 change.
# usage: sudo deploy/jetson/prebuild-engines.sh [--config /etc/rtdecode/config.toml]
#        [--prefix /opt/rtdecode] [--user rtdecode] [--cache /var/cache/rtdecode/trt]
set -euo pipefail
CONFIG="/etc/rtdecode/config.toml"
PREFIX="/opt/rtdecode"
SVC_USER="rtdecode"
CACHE="/var/cache/rtdecode/trt"
while [ $# -gt 0 ]; do
    case "$1" in
        --config) CONFIG="$2"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        --user) SVC_USER="$2"; shift 2 ;;
        --cache) CACHE="$2"; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "prebuild-engines.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "prebuild-engines.sh: run as root (sudo)" >&2; exit 2; }
id "$SVC_USER" >/dev/null 2>&1 || { echo "prebuild-engines.sh: no user $SVC_USER (run deploy/systemd/install-unit.sh first)" >&2; exit 2; }
install -d -o "$SVC_USER" -g "$SVC_USER" "$(dirname "$CACHE")" "$CACHE"
# --prune: engines of these models built for another TensorRT / GPU / model file are removed
sudo -u "$SVC_USER" env RTDECODE_TRT_CACHE="$CACHE" PYLSL_LIB="${PYLSL_LIB:-}" \
    "$PREFIX/venv/bin/rtdecode" trt-build "$CONFIG" --prune
