#!/usr/bin/env bash
# Runs every test: unit tests on in-memory fakes, conformance suites against a
# real redis-server and real ZeroMQ sockets, and integration tests that start
# the real binaries. Each test that needs Redis starts its own on loopback.
# Then a short fuzz run of the gateway's intake from the seed corpus, in
# ${FEDRX_BUILD_DIR:-build}-fuzz (FEDRX_FUZZ_SECONDS, default 60; 0 skips it);
# a crash fails the run (deploy/fuzz.sh runs longer ones).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
BUILD_DIR=${FEDRX_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
if [[ ${FEDRX_FUZZ_SECONDS:-60} -gt 0 ]]; then
  FEDRX_FUZZ_FRESH=1 bash deploy/fuzz.sh "${FEDRX_FUZZ_SECONDS:-60}"
fi
