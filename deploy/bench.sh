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
# Streaming FedAvg vs STREAM copy/triad and the numpy list-then-average baseline.
"$BUILD_DIR/tests/bench/fedrx_aggregation_bench" --out "$OUT"
# The real processes on loopback: synthetic studies, then the Tox21 demo round.
"$BUILD_DIR/tests/bench/fedrx_framework_bench" --out "$OUT"
echo "bench: results in $OUT"
cat "$OUT"
