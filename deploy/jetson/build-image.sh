#!/usr/bin/env bash
# Build the Jetson image (Dockerfile.jetson) on the L4T JetPack base named in versions.env.
# Run on the Jetson (or an arm64 builder) from a checkout; extra arguments go to docker build.
# usage: deploy/jetson/build-image.sh [--tag rtdecode:jetson] [--dry-run] [docker build args...]
#   e.g. --build-arg ORT_INDEX=URL   take onnxruntime-gpu from another index
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=deploy/jetson/versions.env
. "$HERE/versions.env"
TAG="rtdecode:jetson"
RUN=()
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) TAG="$2"; shift 2 ;;
        --dry-run) RUN=(echo); shift ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
"${RUN[@]}" docker build --build-arg "L4T_BASE=$L4T_BASE" -f "$HERE/Dockerfile.jetson" -t "$TAG" "$@" "$ROOT"
