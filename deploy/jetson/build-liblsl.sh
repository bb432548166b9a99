#!/usr/bin/env bash
# Build liblsl from source (sccn/liblsl, CMake) and install it system-wide. pylsl finds it
# through PYLSL_LIB (set by Dockerfile.jetson / setup.sh). Needed on aarch64 (Jetson) where
# no prebuilt liblsl matches the L4T system; works on any Linux with cmake and a C++ compiler.
# usage: deploy/jetson/build-liblsl.sh [--version TAG] [--prefix /usr/local]
#   --version  liblsl git tag (default: LIBLSL_VERSION of versions.env)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/jetson/versions.env
. "$HERE/versions.env"
VERSION="$LIBLSL_VERSION"
PREFIX="/usr/local"
while [ $# -gt 0 ]; do
    case "$1" in
        --version) VERSION="$2"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        *) echo "build-liblsl.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
for tool in git cmake c++; do
    command -v "$tool" >/dev/null || { echo "build-liblsl.sh: needs $tool (apt-get install build-essential cmake git)" >&2; exit 2; }
done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
git clone --depth 1 --branch "$VERSION" https://github.com/sccn/liblsl.git "$WORK/liblsl"
cmake -S "$WORK/liblsl" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DLSL_UNIXFOLDERS=ON \
      -DCMAKE_INSTALL_PREFIX="$PREFIX"
cmake --build "$WORK/build" --parallel "$(nproc)"
cmake --install "$WORK/build"
command -v ldconfig >/dev/null && ldconfig || true
ls -l "$PREFIX"/lib/liblsl.so*
echo "build-liblsl.sh: liblsl $VERSION installed; export PYLSL_LIB=$PREFIX/lib/liblsl.so"
