#!/usr/bin/env bash
# Install the rtdecode systemd unit: a system user, /etc/rtdecode/config.toml (from --config,
# kept if it exists), /etc/default/rtdecode, the unit file; then enable it (unless --no-enable).
# Assumes rtdecode is installed in PREFIX/venv (deploy/docker/install.sh or deploy/jetson/setup.sh).
#
# usage: sudo deploy/systemd/install-unit.sh --config FILE [--prefix /opt/rtdecode] [--no-enable]
#        deploy/systemd/install-unit.sh --root DIR --config FILE   # stage into DIR (tests, packaging)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="/opt/rtdecode"
CONFIG=""
ROOT=""
ENABLE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --config) CONFIG="$2"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        --root) ROOT="$2"; ENABLE=0; shift 2 ;;
        --no-enable) ENABLE=0; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install-unit.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$CONFIG" ] || { echo "install-unit.sh: --config FILE is required (e.g. deploy/configs/cortex-sim.toml)" >&2; exit 2; }
[ -f "$CONFIG" ] || { echo "install-unit.sh: $CONFIG does not exist" >&2; exit 2; }
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    echo "install-unit.sh: run as root (sudo), or stage with --root DIR" >&2; exit 2
fi

ETC="$ROOT/etc"
mkdir -p "$ETC/rtdecode" "$ETC/systemd/system" "$ETC/default"
if [ -f "$ETC/rtdecode/config.toml" ]; then
    echo "install-unit.sh: keeping existing $ETC/rtdecode/config.toml"
else
    # relative model paths in the examples point at ../../models: make them absolute
    sed -E "s#\"(\.\./)+models/#\"$PREFIX/models/#" "$CONFIG" > "$ETC/rtdecode/config.toml"
    echo "install-unit.sh: wrote $ETC/rtdecode/config.toml from $CONFIG"
fi
if [ ! -f "$ETC/default/rtdecode" ]; then
    {
        echo "# Environment of the rtdecode service (see docs/deployment.md)"
        echo "# LSLAPICFG=/etc/rtdecode/lsl_api.cfg   # reach a rig on the lab network"
        if [ -e /usr/local/lib/liblsl.so ]; then echo "PYLSL_LIB=/usr/local/lib/liblsl.so"; fi
    } > "$ETC/default/rtdecode"
fi
sed "s#/opt/rtdecode#$PREFIX#g" "$HERE/rtdecode.service" > "$ETC/systemd/system/rtdecode.service"
echo "install-unit.sh: wrote $ETC/systemd/system/rtdecode.service"

if [ -z "$ROOT" ]; then
    id rtdecode >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/rtdecode \
        --shell /usr/sbin/nologin rtdecode
    # GPU access on Jetson / desktop drivers goes through the video / render groups
    for g in video render; do getent group "$g" >/dev/null && usermod -aG "$g" rtdecode; done
    systemctl daemon-reload
    if [ "$ENABLE" = 1 ]; then
        systemctl enable --now rtdecode.service
        systemctl --no-pager status rtdecode.service || true
    fi
fi
echo "install-unit.sh: done. Logs: journalctl -u rtdecode -f; health: $PREFIX/venv/bin/rtdecode check"
