#!/usr/bin/env bash
# Which pip index serves onnxruntime-gpu for this Jetson: checks the board's Jetson Linux
# release and CUDA against deploy/jetson/versions.env, prints the index URL (exit 0), or stops
# (exit 3) saying what to do when the board runs another JetPack. install-ort.sh calls it.
# usage: deploy/jetson/select-index.sh [--release-file FILE] [--cuda-home DIR]
#   --release-file  Jetson Linux release (default /etc/nv_tegra_release)
#   --cuda-home     CUDA toolkit: DIR/version.json, else DIR/bin/nvcc (default /usr/local/cuda)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/jetson/versions.env
. "$HERE/versions.env"
RELEASE_FILE="/etc/nv_tegra_release"
CUDA_HOME="/usr/local/cuda"
while [ $# -gt 0 ]; do
    case "$1" in
        --release-file) RELEASE_FILE="$2"; shift 2 ;;
        --cuda-home) CUDA_HOME="$2"; shift 2 ;;
        -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
        *) echo "select-index.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
say() { echo "select-index.sh: $*" >&2; }

# "# R36 (release), REVISION: 4.3, GCID: ..." -> 36 and 4
if [ -r "$RELEASE_FILE" ]; then
    line="$(head -n 1 "$RELEASE_FILE")"
    major="$(sed -n 's/^# R\([0-9]*\) .*/\1/p' <<<"$line")"
    minor="$(sed -n 's/.*REVISION: \([0-9]*\)\..*/\1/p' <<<"$line")"
    if [ "$major" != "$L4T_MAJOR" ]; then
        say "this board runs Jetson Linux R${major:-?} (${line}); the recipe is for JetPack ${JETPACK%%.*}"
        say "(R$L4T_MAJOR, Python $PYTHON_VERSION). R35 is JetPack 5 (CUDA 11.4, Python 3.8): flash JetPack $JETPACK,"
        say "or install an onnxruntime-gpu wheel built for your JetPack with install-ort.sh --wheel FILE"
        exit 3
    fi
    [ "$minor" = "$L4T_MINOR" ] || say "note: Jetson Linux R$major.$minor; the pins were chosen for R$L4T_MAJOR.$L4T_MINOR (JetPack $JETPACK)"
else
    say "no $RELEASE_FILE (not a Jetson, or a container without it): using the index for JetPack $JETPACK"
fi

# CUDA major.minor: version.json of the toolkit, else nvcc ("release 12.6, V12.6.68")
cuda=""
if [ -r "$CUDA_HOME/version.json" ]; then
    cuda="$(python3 -c 'import json, sys; v = json.load(open(sys.argv[1]))["cuda"]["version"]
print(".".join(v.split(".")[:2]))' "$CUDA_HOME/version.json" 2>/dev/null || true)"
elif [ -x "$CUDA_HOME/bin/nvcc" ]; then
    cuda="$("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
fi
if [ -z "$cuda" ]; then
    say "no CUDA version in $CUDA_HOME: assuming CUDA $CUDA_VERSION (JetPack $JETPACK)"
elif [ "$cuda" != "$CUDA_VERSION" ]; then
    say "this board has CUDA $cuda; the pinned $ORT_PACKAGE $ORT_VERSION comes from the CUDA $CUDA_VERSION"
    say "index ($ORT_INDEX). JetPack 6.0 ships CUDA 12.2. Either flash JetPack $JETPACK (recommended), or"
    say "pick the index for CUDA $cuda yourself: install-ort.sh --index ${INDEX_HOST}/jp${JETPACK%%.*}/cu${cuda//./}/+simple/"
    say "--version <a version that index lists> (not tested by rtdecode)"
    exit 3
fi
echo "$ORT_INDEX"
