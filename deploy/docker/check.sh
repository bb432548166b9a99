#!/usr/bin/env bash
# Self-check of an installed rtdecode (the image build runs it; so does CI after install.sh):
#   1. `rtdecode doctor --json` on this machine (providers, GPU, liblsl, ZeroMQ, latency self-test),
#      JSON checked for its fields;
#   2. every config in the configs folder validated and its models opened (`rtdecode doctor CONFIG`).
# usage: deploy/docker/check.sh [--bin DIR] [--configs DIR] [--budget-ms MS]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=""
CONFIGS="$HERE/../configs"
# generous: this checks the install, not the machine (run `rtdecode doctor` for the real budget)
BUDGET_MS=1000

while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2/"; shift 2 ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --budget-ms) BUDGET_MS="$2"; shift 2 ;;
        -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
        *) echo "check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

RTD="${BIN}rtdecode"
PY="${BIN}python"
[ -n "$BIN" ] || PY="python3"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

echo "check.sh: rtdecode doctor --json"
"$RTD" doctor --json --lsl-timeout 0.5 --steps 200 --messages 200 --budget-ms "$BUDGET_MS" \
    > "$OUT/doctor.json"
"$PY" - "$OUT/doctor.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for key in ("onnxruntime", "gpu", "tensorrt_cache", "decoders", "lsl", "zmq", "checks", "verdict"):
    assert key in r, f"doctor JSON lacks {key!r}"
assert "cpu" in r["onnxruntime"]["available"], r["onnxruntime"]
assert r["zmq"]["loopback"]["received"] == r["zmq"]["loopback"]["messages"], r["zmq"]
assert r["verdict"] == "PASS", [c for c in r["checks"] if not c["ok"]]
print(f"check.sh: doctor PASS (providers {r['onnxruntime']['available']}, GPU {r['gpu']['nvidia_smi']})")
PY

shopt -s nullglob
n=0
for cfg in "$CONFIGS"/*.toml "$CONFIGS"/*.yaml; do
    echo "check.sh: config $cfg"
    "$RTD" doctor "$cfg" --json --lsl-timeout 0 --steps 50 --messages 50 --budget-ms "$BUDGET_MS" \
        > "$OUT/config.json" || { cat "$OUT/config.json"; echo "check.sh: $cfg FAILED" >&2; exit 1; }
    n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "check.sh: no configs in $CONFIGS" >&2; exit 1; }
echo "check.sh: OK ($n configs)"
