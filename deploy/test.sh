#!/usr/bin/env bash
# Runs every test: unit tests on in-memory fakes, conformance suites against a
# real redis-server and real ZeroMQ sockets, and integration tests that start
# the real binaries. Each test that needs Redis starts its own on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
BUILD_DIR=${FEDRX_BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
