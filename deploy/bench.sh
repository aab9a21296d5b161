#!/usr/bin/env bash
# Runs every benchmark and writes one JSON object per line to the file named
# by $1 (default bench-results.jsonl):
#   {"bench": ..., "metric": ..., "value": ..., "unit": ..., "baseline": ..., "ratio": ...}
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-bench-results.jsonl}")
bash deploy/build.sh
BUILD_DIR=${FEDRX_BUILD_DIR:-build}
: >"$OUT"
"$BUILD_DIR/tests/bench/fedrx_bus_bench" --out "$OUT"
echo "bench: results in $OUT"
cat "$OUT"
