#!/usr/bin/env bash
# End-to-end test of the local stack (ctest label "stack"): starts the whole
# platform as processes with deploy/stack.sh, in its own run dir and port
# block so that it runs beside the demo, and then
#   - runs a short federated study: two sites train two rounds on a small
#     share of the vendored Tox21 data; a third, frozen with SIGSTOP before
#     the study starts, is dropped from its rounds (the dropout metrics and
#     alert need that) and is then removed from the stack;
#   - drops a compound file, a SEND study and a broken file into fedrx-ingest's
#     inbox (two ingests, one failure);
#   - assesses a candidate through the gateway and the orchestrator (partial:
#     only the Tox21 panel has a model here) and asks the reverse-translation
#     service (no counts study: it answers from its organ-class table alone);
#   - asks Prometheus (tests/stack/check_prometheus.py) whether every target
#     is up, whether the key series have the values this run must have
#     produced, whether every metric the dashboards and alert rules reference
#     exists, and whether the alert rules evaluate.
# Everything it started is stopped on exit.
#
#   e2e.sh --source DIR --build DIR --run DIR [--offset N] [--require FILE...]
#
# --build is the build tree whose binaries run; --require names binaries
# that must exist there (CMake passes the targets' files), --offset moves
# every demo port (default 20000: 25560..., Prometheus on 29090).
set -euo pipefail
SOURCE='' BUILD='' RUN_DIR='' OFFSET=20000
required=()
while (($#)); do
  case $1 in
    --source) SOURCE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --run) RUN_DIR=$2; shift 2 ;;
    --offset) OFFSET=$2; shift 2 ;;
    --require) required+=("$2"); shift 2 ;;
    *) echo "e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [[ -z "$SOURCE" || -z "$BUILD" || -z "$RUN_DIR" ]]; then
  echo "usage: e2e.sh --source DIR --build DIR --run DIR [--offset N] [--require FILE...]" >&2
  exit 2
fi
for f in "${required[@]}"; do
  [[ -x "$f" ]] || { echo "stack-e2e: $f is not built (build all targets first)" >&2; exit 1; }
done
BUILD=$(realpath "$BUILD")
RUN_DIR=$(realpath -m "$RUN_DIR")
cd "$SOURCE"

STACK_WHO=stack-e2e
# shellcheck source=deploy/stack.sh
source deploy/stack.sh
trap stack_stop EXIT

started=$(date +%s%N)
phase_started=$started
phase() {  # what: prints how long the phase before it took
  local now
  now=$(date +%s%N)
  printf 'stack-e2e: %-44s %6.1f s\n' "$1" "$(((now - phase_started) / 1000000))e-3"
  phase_started=$now
}
fail() { echo "stack-e2e: FAIL: $*" >&2; exit 1; }

stack_init "$RUN_DIR" "$OFFSET" "$BUILD"
SITES=(e2e-a e2e-b e2e-c)
# shellcheck disable=SC2034  # read through a nameref by enrol_sites/start_sites
INSTITUTIONS=("E2E institution A" "E2E institution B" "E2E institution C")
STUDY=tests/stack/e2e.study
STUDY_ID=stack-e2e

# The sites' shares of the first 1,500 Tox21 molecules (scaffold split).
head -n 1501 deploy/data/tox21/tox21.csv >"$RUN/data/tox21-subset.csv"
"$LAB" prepare --data "$RUN/data/tox21-subset.csv" --out "$RUN/data" \
  --sites "$(IFS=,; echo "${SITES[*]}")" --shares 0.4,0.4,0.2 --seed 7 >"$RUN/prepare.log"
for site in "${SITES[@]}"; do
  "$FEDRX" ingest compounds --in "$RUN/data/$site.csv" --store "$RUN/store/$site" --folds 5 \
    >"$RUN/ingest-$site.log"
done
phase "data prepared and ingested"

stack_start_redis
stack_start_redis_exporter
stack_start_prometheus
stack_make_keys >/dev/null
stack_bootstrap_admin >/dev/null
# fedrx-ingest ingests a compound file and the CRO's SEND study (as the demo
# does), dropped into its inbox: the ingestion metrics, conformance findings.
stack_start_ingest ingest "$RUN/inbox" "$RUN/stores" 9470
cp "$RUN/data/${SITES[0]}.csv" "$RUN/inbox/assay.csv"
touch "$RUN/inbox/assay.ready"
mkdir -p "$RUN/inbox/send_pc201708"
cp tests/data/ingest/send_pointcross_pc201708/*.xpt \
   tests/data/ingest/send_pointcross_pc201708_define/define.xml "$RUN/inbox/send_pc201708/"
touch "$RUN/inbox/send_pc201708.ready"
# And a table that is no compound table: that ingest fails (failed runs and
# the service's degraded-operations counter, which alerts and dashboards use).
printf 'this,is,no,compound,table\n1,2,3,4,5\n' >"$RUN/inbox/broken.csv"
touch "$RUN/inbox/broken.ready"
# The tox service serves this test's study as its tox21 panel.
# shellcheck disable=SC2034  # read by stack_start_domain_services
STACK_ENV_tox=(FEDRX_TOX_PANELS="tox21=$STUDY_ID,toxcast=toxcast-demo")
stack_start_coordinator
stack_start_domain_services
stack_start_orchestration
stack_start_gateway
"$FEDRX" "${ADMIN[@]}" health >"$RUN/health.log" || fail "fedrx health through the gateway"
phase "platform started"

enrol_sites SITES INSTITUTIONS >"$RUN/enrol.log"
"$FEDRX" "${ADMIN[@]}" institutions enrol --id scientist-1 --name "E2E scientist" \
  --role scientist --key-out "$KEYS/scientist.key" >>"$RUN/enrol.log"
start_sites SITES INSTITUTIONS 9466 "$STUDY_ID"
phase "sites enrolled and started"

# e2e-c is frozen (its connection stays open, it answers nothing): the
# coordinator selects it, it misses the round deadline and is dropped.
frozen_pid=$(stack_site_pid e2e-c)
kill -STOP "$frozen_pid"
"$FEDRX" "${ADMIN[@]}" study create "$STUDY" >"$RUN/study.log"
timeout 300 "$FEDRX" "${SCIENTIST[@]}" study watch "$STUDY_ID" --interval 500 >>"$RUN/study.log" ||
  fail "the study $STUDY_ID did not finish (see $RUN/study.log, $RUN/coordinator.log)"
"$FEDRX" "${SCIENTIST[@]}" study show "$STUDY_ID" >"$RUN/study-show.log"
version=$(sed -n '1s/.*model version \([0-9]*\).*/\1/p' "$RUN/study-show.log")
[[ "$version" =~ ^[0-9]+$ && "$version" -ge 2 ]] ||
  fail "study $STUDY_ID ended at model version '${version}', expected >= 2 (see $RUN/study-show.log)"
# The frozen site is not resumed: it would take up both rounds' stale tasks at
# once (see the report on fedrx-site); it leaves the stack instead.
stack_retire_site e2e-c
phase "study $STUDY_ID: model version $version"

# The ingest service has taken the dropped inputs: two ingested, one failed.
for name in assay:done send_pc201708:done broken:failed; do
  for _ in $(seq 1 600); do
    [[ -e "$RUN/inbox/done/${name%:*}.ready" || -e "$RUN/inbox/failed/${name%:*}.ready" ]] && break
    sleep 0.1
  done
  [[ -e "$RUN/inbox/${name#*:}/${name%:*}.ready" ]] ||
    fail "fedrx-ingest did not put ${name%:*} in ${name#*:}/ (see $RUN/inbox/, $RUN/ingest.log)"
done

# The tox service switches to the study's final version on its own.
tox_metrics="http://127.0.0.1:$(stack_port 9484)/metrics"
for _ in $(seq 1 200); do
  curl -fsS "$tox_metrics" | grep -q "^fedrx_tox_model_version{study=\"$STUDY_ID\"} $version\$" && break
  sleep 0.1
done
curl -fsS "$tox_metrics" | grep -q "^fedrx_tox_model_version{study=\"$STUDY_ID\"} $version\$" ||
  fail "fedrx-tox does not serve $STUDY_ID version $version (see $RUN/tox.log)"

# An assessment through the gateway and the orchestrator. Only the Tox21 panel
# has a model here: the ToxCast and clinical steps answer that their study has
# no model, so the run is partial; it must still end and give a report.
mkdir -p "$RUN/reports"
"$FEDRX" "${SCIENTIST[@]}" assess deploy/candidates/paroxetine.yaml --run-id e2e-paroxetine \
  --out "$RUN/reports" >"$RUN/reports/paroxetine.log" 2>&1 ||
  fail "fedrx assess failed (see $RUN/reports/paroxetine.log, $RUN/orchestrator.log)"
outcome=$(sed -n 's/^run e2e-paroxetine: \(succeeded\|partial\|failed\).*/\1/p' "$RUN/reports/paroxetine.log")
[[ "$outcome" == succeeded || "$outcome" == partial ]] ||
  fail "the assessment ended '${outcome}' (see $RUN/reports/paroxetine.log)"
grep -q '^report ' "$RUN/reports/paroxetine.log" ||
  fail "the assessment gave no report (see $RUN/reports/paroxetine.log)"
grep -qE '^\[[^]]*\] +tox +succeeded ' "$RUN/reports/paroxetine.log" ||
  fail "the assessment's tox step (this study's model) did not succeed (see $RUN/reports/paroxetine.log)"
echo "stack-e2e: assessment e2e-paroxetine: $outcome"
# The steps that did not succeed, with their reasons.
grep -E '^\[[^]]*\] +[a-z0-9_]+ +(failed|skipped) ' "$RUN/reports/paroxetine.log" |
  sed 's/^\[[^]]*\] */stack-e2e:   /' || true
# Reverse translation has no counts study here: it answers from its
# organ-class table alone.
"$FEDRX" "${SCIENTIST[@]}" reverse translate --organ-class "Hepatobiliary disorders" \
  --label CT_TOX --fdr 0.05 >"$RUN/reverse-request.log" 2>&1 ||
  fail "reverse translate through the gateway failed (see $RUN/reverse-request.log)"
echo "stack-e2e: reverse translate: $(head -n 1 "$RUN/reverse-request.log")"
phase "assessment and reverse request"

# Prometheus: every target up, key series, the dashboards' and rules' names,
# all from scrapes that began after this point.
/usr/bin/python3 tests/stack/check_prometheus.py --url "$PROMETHEUS_URL" --targets "$RUN/targets.tsv" \
  --since "$(date +%s.%N)" --study "$STUDY_ID" --run-id e2e-paroxetine \
  --metric-names tests/observability/metric_names.py
phase "Prometheus checks"
printf 'stack-e2e: PASS in %d s (logs in %s)\n' $((($(date +%s%N) - started) / 1000000000)) "$RUN"
