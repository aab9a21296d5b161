#!/usr/bin/env bash
# The fedrx demo on this machine: builds everything, starts Redis and the
# coordinator on loopback, registers institutions' sites with the `fedrx` CLI,
# lists them, shows a refused registration and the metrics, restarts the
# coordinator to show the state survives, then stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
BUILD_DIR=${FEDRX_BUILD_DIR:-build}
BIN="$BUILD_DIR"
RUN=.fedrx-run
mkdir -p "$RUN"
REDIS_PORT=6390
export FEDRX_COORDINATOR=tcp://127.0.0.1:5570
FEDRX="$BIN/services/cli/fedrx"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

wait_ready() {  # $1: url, $2: what
  for _ in $(seq 1 100); do
    if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "demo: $2 did not become ready at $1" >&2
  exit 1
}

start_coordinator() {
  "$BIN/services/coordinator/fedrx-coordinator" --config deploy/coordinator.conf \
    >>"$RUN/coordinator.log" 2>&1 &
  coordinator_pid=$!
  pids+=("$coordinator_pid")
  wait_ready http://127.0.0.1:9464/readyz coordinator
}

step "Starting Redis on 127.0.0.1:$REDIS_PORT (state in $RUN/)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN" --save "" --appendonly yes \
  --appendfilename demo.aof >"$RUN/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" flushall >/dev/null

step "Starting the coordinator (bus $FEDRX_COORDINATOR, metrics http://127.0.0.1:9464/metrics)"
start_coordinator
"$FEDRX" health

step "Three institutions register their sites (descriptors only; no rows leave a site)"
"$FEDRX" sites register --site pharma-a --institution "Pharma A" --samples 2412 \
  --tasks NR-AR,NR-AhR,SR-p53 --schema-hash ecfp2048-r2
"$FEDRX" sites register --site hospital-b --institution "University Hospital B" --samples 1630 \
  --tasks NR-AR,SR-p53 --schema-hash ecfp2048-r2
"$FEDRX" sites register --site cro-c --institution "CRO C" --samples 3791 \
  --tasks NR-AR,NR-AhR --schema-hash ecfp2048-r2

step "Registered sites"
"$FEDRX" sites list

step "A malformed registration is refused with what and where (exit code shown)"
set +e
"$FEDRX" sites register --site "bad site!" --institution "Nobody"
echo "exit code: $?"
set -e

step "The coordinator restarts; its state is in Redis"
kill -TERM "$coordinator_pid"
wait "$coordinator_pid" || true
start_coordinator
"$FEDRX" sites register --site pharma-a --institution "Pharma A" --samples 2500 \
  --tasks NR-AR,NR-AhR,SR-p53 --schema-hash ecfp2048-r2
"$FEDRX" sites list

step "Coordinator metrics (excerpt)"
curl -fsS http://127.0.0.1:9464/metrics |
  grep -E '^fedrx_coordinator_(requests_total|site_registrations|sites_registered|rejected_total|messages_total)' |
  head -20

step "Done; stopping Redis and the coordinator"
