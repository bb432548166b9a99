#!/usr/bin/env bash
# System packages the image needs before install.sh: a Python with venv (CUDA / L4T bases are
# plain Ubuntu) and, with --build-tools, what building liblsl from source needs (Jetson).
# usage: deploy/docker/system-deps.sh [--build-tools]
set -euo pipefail
PKGS=(ca-certificates)
command -v python3 >/dev/null 2>&1 || PKGS+=(python3)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || PKGS+=(python3-venv python3-pip)
[ "${1:-}" = "--build-tools" ] && PKGS+=(build-essential cmake git)
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${PKGS[@]}"
rm -rf /var/lib/apt/lists/*
