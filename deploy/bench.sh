#!/usr/bin/env bash
# Runs every benchmark and writes one JSON object per line to the file named
# by $1 (default bench-results.jsonl):
#   {"bench": ..., "metric": ..., "value": ..., "unit": ..., "baseline": ..., "ratio": ...}
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-bench-results.jsonl}")
bash deploy/build.sh
# Baselines only the benchmarks need (never CI): PyTorch for the trainer,
# numpy for list-then-average aggregation, OpenBLAS so PyTorch is measured with
# a tuned BLAS rather than the reference one, RDKit's Python bindings for the
# compound ingest baseline.
bench_packages=(python3-torch python3-numpy libopenblas0-pthread python3-rdkit)
missing=()
for p in "${bench_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi
BUILD_DIR=${FEDRX_BUILD_DIR:-build}
: >"$OUT"
"$BUILD_DIR/tests/bench/fedrx_bus_bench" --out "$OUT"
# Local training throughput against PyTorch on the same network, data and batch.
OPENBLAS_NUM_THREADS=1 "$BUILD_DIR/tests/bench/fedrx_trainer_bench" --torch --out "$OUT"
# Streaming FedAvg vs STREAM copy/triad and the numpy list-then-average baseline.
"$BUILD_DIR/tests/bench/fedrx_aggregation_bench" --out "$OUT"
# The gateway (CURVE, registry, audit) against direct connections, and fairness
# under a flood from one identity.
"$BUILD_DIR/tests/bench/fedrx_gateway_bench" --out "$OUT"
# The real processes on loopback: synthetic studies, then the Tox21 demo round.
"$BUILD_DIR/tests/bench/fedrx_framework_bench" --out "$OUT"
# Compound ingest (Tox21 + the vendored ToxCast subset) against the same steps
# on python3-rdkit, runs alternating; the ratios are fedrx / Python.
"$BUILD_DIR/tests/bench/fedrx_ingest_bench" --out "$OUT"
"$BUILD_DIR/tests/bench/fedrx_trial_bench" --out "$OUT"
# The tox panel end to end through the gateway (structures in, probabilities
# with conformal p-values and the domain flag out) against the same
# featurisation, forward pass and p-values in python3-rdkit + python3-torch.
if [ -x "$BUILD_DIR/tests/bench/fedrx_tox_bench" ]; then
  "$BUILD_DIR/tests/bench/fedrx_tox_bench" --out "$OUT"
  grep -E '"bench": "tox"' "$OUT" |
    sed -E 's/.*"metric": "([^"]+)", "value": ([^,]+), "unit": "([^"]+)", "baseline": ([^,]+), "ratio": ([^}]+)}.*/tox: \1: fedrx \2 \3, python \4, ratio \5/'
fi
echo "ingest: uptime $(uptime)"
grep -E '"metric": "records_per_s_(1thread_vs_python_1proc|2threads_vs_python_2proc)"' "$OUT" |
  sed -E 's/.*"metric": "([^"]+)", "value": ([^,]+),.*"baseline": ([^,]+), "ratio": ([^}]+)}.*/ingest: \1: fedrx \2 records\/s, python \3 records\/s, ratio \4 (aim >= 1.5)/'
echo "bench: results in $OUT"
cat "$OUT"
