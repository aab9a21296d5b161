#!/usr/bin/env bash
# The quality table of the federated models the tox and clinical services
# serve (Tox21, the ToxCast panel, ClinTox), on the demo's held-out scaffold
# test sets: per task and mean test ROC-AUC of the federated model, of a
# random forest (scikit-learn, 500 trees per task) trained on the pooled
# training rows with exactly the same fingerprint bits (`fedrx-lab export`),
# and the published MoleculeNet figures (with their split); then conformal
# coverage per class at 0.8 and 0.9 confidence from the calibration the
# coordinator stored for each model version (`fedrx-lab coverage`). Writes
# .fedrx-run/quality/quality.md and quality.json.
#
# Needs the demo's models, stores and Redis data: runs deploy/demo.sh first
# when the federated Tox21 model is missing (FEDRX_QUALITY_SKIP_DEMO=1 to
# refuse instead; FEDRX_QUALITY_SKIP_BUILD=1 to use the binaries as they are).
# A dataset whose model or test store the demo did not make
# is reported as not measured. Installs python3-sklearn (apt) when missing;
# CI never runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${FEDRX_BUILD_DIR:-build}
RUN=.fedrx-run
OUT="$RUN/quality"
LAB="$BIN/services/lab/fedrx-lab"
PY=/usr/bin/python3  # Debian's, where apt installs scikit-learn
DEMO_REDIS_PORT=6390
QUALITY_REDIS_PORT=${FEDRX_QUALITY_REDIS_PORT:-6391}

# name | study file | federated model | pooled store | test store
DATASETS=(
  "tox21|deploy/studies/tox21-demo.study|$RUN/models/federated.bin|$RUN/store/pooled|$RUN/store/test"
  "toxcast|deploy/studies/toxcast-demo.study|$RUN/models/toxcast.bin|$RUN/store/toxcast-pooled|$RUN/store/toxcast-test"
  "clintox|deploy/studies/clintox-demo.study|$RUN/models/clintox.bin|$RUN/store/clintox-pooled|$RUN/store/clintox-test"
)

if [[ ! -f "$RUN/models/federated.bin" ]]; then
  if [[ -n "${FEDRX_QUALITY_SKIP_DEMO:-}" ]]; then
    echo "quality: no federated model in $RUN/models/ (run bash deploy/demo.sh first)" >&2
    exit 1
  fi
  echo "quality: the demo's models are missing; running deploy/demo.sh first"
  bash deploy/demo.sh
elif [[ -z "${FEDRX_QUALITY_SKIP_BUILD:-}" ]]; then
  bash deploy/build.sh 2>&1 | tail -2
fi

if ! "$PY" -c 'import sklearn' 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-sklearn
fi

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.md

# The calibrations live in the demo's Redis. When the demo still runs, ask
# it; otherwise start a private Redis on a copy of its append-only file, so
# the demo's own data is never written to.
pids=()
tmp=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
REDIS=""
if redis-cli -p "$DEMO_REDIS_PORT" ping >/dev/null 2>&1; then
  REDIS="127.0.0.1:$DEMO_REDIS_PORT"
elif [[ -d "$RUN/appendonlydir" ]]; then
  cp -r "$RUN/appendonlydir" "$tmp/"
  redis-server --port "$QUALITY_REDIS_PORT" --bind 127.0.0.1 --dir "$tmp" --appendonly yes \
    --save "" >"$tmp/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p "$QUALITY_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  # Loading the file may take a moment after the first PONG.
  for _ in $(seq 1 100); do
    redis-cli -p "$QUALITY_REDIS_PORT" info persistence 2>/dev/null | grep -q '^loading:0' && break
    sleep 0.1
  done
  REDIS="127.0.0.1:$QUALITY_REDIS_PORT"
else
  echo "quality: no demo Redis data in $RUN/appendonlydir: conformal coverage not measured" >&2
fi

for entry in "${DATASETS[@]}"; do
  IFS='|' read -r name study model pooled test <<<"$entry"
  printf '\n== %s\n' "$name"
  if [[ ! -f "$study" || ! -f "$model" || ! -d "$pooled" || ! -d "$test" ]]; then
    echo "not measured: needs $study, $model, $pooled and $test (from the demo)"
    continue
  fi
  dim=$(sed -n 's/^model.input_dim *= *//p' "$study")
  # The same network and budget trained on the pooled rows: tells the cost of
  # federating apart from the gap between the network and the forest.
  "$LAB" train --study "$study" --data "$pooled" --out "$tmp/$name-pooled.bin" | tail -1
  "$LAB" compare --study "$study" --test "$test" --json "$OUT/$name-federated.json" \
    federated="$model" pooled="$tmp/$name-pooled.bin" | tail -n +2
  "$LAB" export --data "$pooled" --study "$study" --out "$tmp/$name-pooled.csv"
  "$LAB" export --data "$test" --study "$study" --out "$tmp/$name-test.csv"
  echo "random forest (500 trees per task, pooled training rows, same bits):"
  "$PY" deploy/quality.py rf --data "$tmp/$name-pooled.csv" --test "$tmp/$name-test.csv" \
    --dim "${dim:-2048}" --trees 500 --json "$OUT/$name-rf.json"
  if [[ -n "$REDIS" ]]; then
    "$LAB" coverage --study "$study" --model "$model" --test "$test" --redis "$REDIS" \
      --confidence 0.8,0.9 --json "$OUT/$name-coverage.json" ||
      echo "quality: no coverage for $name (see the message above)" >&2
  fi
done

printf '\n'
"$PY" deploy/quality.py table --dir "$OUT"
echo "Quality table: $(realpath "$OUT/quality.md") and quality.json"
