#!/usr/bin/env bash
# Fuzzes the gateway's intake (decode, verify, authorise) with libFuzzer, ASan
# and UBSan: tests/fuzz/gateway_intake_fuzz.cc, built by clang in a build dir
# of its own (FEDRX_FUZZ=ON builds only what the fuzz target needs).
#
#   deploy/fuzz.sh SECONDS [libFuzzer options...]
#
# The seed corpus is regenerated from the schemas on every run (by
# gateway_intake_corpus) and joined by the regression inputs checked in under
# tests/fuzz/corpus/. New inputs go to a working corpus kept between runs in
# BUILD/fuzz/corpus (FEDRX_FUZZ_FRESH=1: a temporary one, seeds only, as CI
# does). A crash, a sanitizer report, a violated property, a timeout or an
# out-of-memory exits non-zero; the input is left in BUILD/fuzz/artifacts/.
# Reproduce with: BUILD/tests/fuzz/gateway_intake_fuzz ARTIFACT
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ || $1 -eq 0 ]]; then
  echo "usage: deploy/fuzz.sh SECONDS [libFuzzer options...]" >&2
  exit 2
fi
seconds=$1
shift
BUILD_DIR=${FEDRX_BUILD_DIR:-build}-fuzz
if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFEDRX_FUZZ=ON >/dev/null
fi
cmake --build "$BUILD_DIR" --target gateway_intake_fuzz gateway_intake_corpus -j"$(nproc)"

work=$BUILD_DIR/fuzz
seed=$work/seed
rm -rf "$seed"
mkdir -p "$seed" "$work/artifacts"
"$BUILD_DIR/tests/fuzz/gateway_intake_corpus" "$seed"
if [[ ${FEDRX_FUZZ_FRESH:-0} == 1 ]]; then
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
else
  corpus=$work/corpus
  mkdir -p "$corpus"
fi
dirs=("$corpus" "$seed")
if compgen -G "tests/fuzz/corpus/*" >/dev/null; then dirs+=(tests/fuzz/corpus); fi

echo "fuzz: gateway_intake_fuzz for ${seconds} s, corpus $corpus, artifacts $work/artifacts/"
# -close_fd_mask=2: the services' own log lines (every refused input logs one)
# are dropped; libFuzzer's output and sanitizer reports still come through.
set +e
"$BUILD_DIR/tests/fuzz/gateway_intake_fuzz" -max_total_time="$seconds" -timeout=10 \
  -max_len=8192 -close_fd_mask=2 -print_final_stats=1 \
  -dict=tests/fuzz/gateway_intake.dict -artifact_prefix="$work/artifacts/" "$@" "${dirs[@]}"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  echo "fuzz: FAILED (exit $rc); the input is in $work/artifacts/ (newest first):" >&2
  ls -t "$work/artifacts/" | head -3 >&2
  exit 1
fi
echo "fuzz: no crash in ${seconds} s"
