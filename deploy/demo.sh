#!/usr/bin/env bash
# The fedrx demo on this machine. Builds everything, then starts Redis, the
# coordinator, the gateway and three institutions' sites as separate processes
# talking over TCP on loopback. Each site holds its own scaffold-disjoint share
# of Tox21; together they train one multi-task toxicity model, round by round,
# while no molecule leaves its site. Then the same network is trained on each
# site's data alone and on all data pooled, with the same budget, and all are
# compared on the held-out scaffold test set. A second study on the same
# platform trains with client-level differential privacy (epsilon <= 8); a
# third repeats the first with secure aggregation (the coordinator only ever
# unmasks the sum) and is compared with the plain model, and a simulation of
# 10 in-process sites checks that the sum survives 3 dropouts. Another
# in-process simulation with 10 simulated sites, 2 of them poisoning their
# updates, compares FedAvg with the robust aggregation rules. A fourth study
# gives four more institutions, each with different tasks, one shared trunk
# and a private head each that never leaves its site. Last, a scientist takes
# a candidate from the CRO's rat study to a first-in-human design through the
# translational and trial services: a NOAEL proposed at the CRO from its SEND
# data, the HED and starting dose (FDA 2005) with their working, the predicted
# human exposure, a virtual trial from that dose, and 3+3, BOIN and CRM on the
# toxicity it predicts. Then three clinical institutions train a ClinTox
# model and securely sum the association counts between clinical outcomes and
# Tox21 assays, three screening institutions train a ToxCast panel, and the
# scientist asks the tox, clinical and reverse-translation services about a
# few candidates: predictions with conformal uncertainty and a domain flag,
# phase-transition success adjusted by predicted risk, and the assays and SEND
# endpoints to study for a clinical signal.
#
# Security: the coordinator is a CurveZMQ server that admits only the keys in
# its authorised clients file (here, the gateway's), so nothing on the platform
# network can talk to it directly. One admin is enrolled straight into Redis
# (the bootstrap); every other enrolment, the study and the audit check go
# through the gateway as that admin, and a scientist watches the study and
# fetches the model through the gateway too.
#
# Observability: Prometheus (the Debian package) scrapes every process of the
# platform and Redis (through prometheus-redis-exporter) with
# deploy/prometheus/local.yml and the alert rules; the demo ends with what it
# sees. FEDRX_DEMO_HOLD=1 keeps the stack running at the end until Ctrl-C, to
# look at it in Prometheus's UI. The processes are started and stopped by
# deploy/stack.sh, which the end-to-end test (tests/stack/) shares.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh 2>&1 | tail -2
STACK_WHO=demo
source deploy/stack.sh
# The demo's run dir and ports (offset 0: those of deploy/*.conf); sets RUN,
# BIN, FEDRX, LAB, KEYS, REDIS_PORT, GATEWAY, PROMETHEUS_URL.
stack_init .fedrx-run 0 "${FEDRX_BUILD_DIR:-build}"
STUDY=${FEDRX_DEMO_STUDY:-deploy/studies/tox21-demo.study}
DP_STUDY=${FEDRX_DEMO_DP_STUDY:-deploy/studies/tox21-dp.study}
study_id() { grep '^study.id' "$1" | cut -d= -f2- | tr -d ' '; }
DP_ID=$(study_id "$DP_STUDY")
SECAGG_STUDY=${FEDRX_DEMO_SECAGG_STUDY:-deploy/studies/tox21-secagg.study}
SECAGG_ID=$(study_id "$SECAGG_STUDY")
SITES=(pharma-a hospital-b cro-c)
INSTITUTIONS=("Pharma A" "University Hospital B" "CRO C")
started=$(date +%s)

trap stack_stop EXIT
step() { printf '\n== %s\n' "$*"; }
# enrol_sites (through the gateway, as the admin) and start_sites (one
# process per institution next to its store, metrics on consecutive ports,
# listed for Prometheus) are in deploy/stack.sh.

step "Preparing each institution's data (scaffold split, non-IID shares by scaffold)"
"$LAB" prepare --data deploy/data/tox21/tox21.csv --out "$RUN/data" \
  --sites "$(IFS=,; echo "${SITES[*]}")" --shares 0.5,0.3,0.2 --seed 7
# Each site ingests its own file into its local store (standardised, InChIKey
# duplicates merged, findings reported; the split column is carried through).
# The baselines' pooled data and the held-out test set go through the same
# path, so every model is trained and scored on identically prepared rows.
ingest() {  # csv store [summary|brief]
  if [[ ${3:-summary} == brief ]]; then
    "$FEDRX" ingest compounds --in "$1" --store "$2" --folds 5 | sed -n '1p'
  else
    "$FEDRX" ingest compounds --in "$1" --store "$2" --folds 5 | grep -v '^  record '
  fi
}
for site in "${SITES[@]}"; do ingest "$RUN/data/$site.csv" "$RUN/store/$site"; done
ingest "$RUN/data/pooled.csv" "$RUN/store/pooled" brief
ingest "$RUN/data/test.csv" "$RUN/store/test" brief

# The CRO also holds a GLP rat study in SEND (PC201708, 13-week oral gavage):
# checked for conformance against its define.xml, mapped into the common data
# model and stored as a version of its own. define.xml is vendored apart from
# the datasets, so both are copied (unmodified) into one folder here.
step "The CRO also holds a GLP rat study in SEND: ingest it into the common data model"
mkdir -p "$RUN/data/send_pc201708"
cp tests/data/ingest/send_pointcross_pc201708/*.xpt \
   tests/data/ingest/send_pointcross_pc201708_define/define.xml "$RUN/data/send_pc201708/"
"$FEDRX" ingest study --in "$RUN/data/send_pc201708" --store "$RUN/store/cro-c-send" \
  --max-findings 5 --report "$RUN/store/cro-c-send-conformance.json"

step "cro-c also runs fedrx-ingest: its pipeline only drops files into an inbox"
stack_start_ingest ingest-cro-c "$RUN/inbox/cro-c" "$RUN/stores/cro-c" 9470
cp "$RUN/data/cro-c.csv" "$RUN/inbox/cro-c/assay.csv"  # the copy may take a while...
touch "$RUN/inbox/cro-c/assay.ready"                    # ...the marker says it is complete
for _ in $(seq 1 600); do
  [[ -e "$RUN/inbox/cro-c/done/assay.ready" || -e "$RUN/inbox/cro-c/failed/assay.ready" ]] && break
  sleep 0.1
done
if [[ ! -e "$RUN/inbox/cro-c/done/assay.ready" ]]; then
  echo "demo: fedrx-ingest did not ingest the dropped file; see $RUN/inbox/cro-c/failed/ and $RUN/ingest-cro-c.log" >&2
  exit 1
fi
sed -n 's/^ *"\(outcome\|version\|records_read\|compounds\|unparseable\|duplicates_merged\)": /  \1: /p' \
  "$RUN/inbox/cro-c/done/assay.report.json"
curl -fsS http://127.0.0.1:9470/metrics | grep -E '^fedrx_ingest_(runs|records)_total'

step "Starting Redis (append-only persistence in $RUN/)"
stack_start_redis
# Prometheus scrapes every process from here on (the sites join as they start).
stack_start_redis_exporter
stack_start_prometheus
step "Platform keys: the coordinator admits only the gateway's CURVE key; the gateway only enrolled keys"
# In $KEYS, the paths deploy/*.conf name; the audit trail's HMAC key stays with
# the gateway (and the bootstrap CLI), never in Redis.
stack_make_keys

step "Bootstrap: the first admin is enrolled directly in Redis (everyone else through the gateway)"
# Sets ADMIN and SCIENTIST, the CLI's arguments for each.
stack_bootstrap_admin

step "Starting the coordinator, the domain services (CurveZMQ servers for the gateway's key only) and the gateway"
# All read their key files from $KEYS (see deploy/*.conf). The ML domain
# services read the federated models (and their calibration) from Redis as
# the coordinator publishes them; until a study has a model they answer
# Unavailable naming it. The orchestrator runs the workflows in
# deploy/workflows/ (it refuses to start if one of them is invalid); the
# report service writes candidate and study reports into Redis.
stack_start_coordinator
stack_start_domain_services
stack_start_orchestration
stack_start_gateway
"$FEDRX" "${ADMIN[@]}" health

step "Enrolling the three institutions and a scientist through the gateway, as admin: each receives its CURVE key pair; the platform keeps only the public keys"
enrol_sites SITES INSTITUTIONS
"$FEDRX" "${ADMIN[@]}" institutions enrol --id scientist-1 --name "Translational scientist" \
  --role scientist --key-out "$KEYS/scientist.key"
"$FEDRX" "${ADMIN[@]}" institutions list

step "Starting three sites, each next to its own data; they connect out to the gateway over CurveZMQ"
# Each institution approves the three studies it will take part in.
APPROVED="$(study_id "$STUDY"),$DP_ID,$SECAGG_ID"
start_sites SITES INSTITUTIONS 9466 "$APPROVED"
"$FEDRX" "${SCIENTIST[@]}" sites list

step "Federated study: $(grep '^study.name' "$STUDY" | cut -d= -f2- | sed 's/^ *//')"
"$FEDRX" "${ADMIN[@]}" study create "$STUDY"
fed_started=$(date +%s%N)
"$FEDRX" "${SCIENTIST[@]}" study watch tox21-demo --interval 500
fed_ms=$(( ($(date +%s%N) - fed_started) / 1000000 ))
"$FEDRX" "${SCIENTIST[@]}" study model tox21-demo --out "$RUN/models/federated.bin"

step "Secure aggregation on the same platform: $(grep '^study.name' "$SECAGG_STUDY" | cut -d= -f2- | sed 's/^ *//')"
# The same study from the same seeds, but each site masks its update's change
# (Bonawitz et al.): the coordinator relays keys and sealed shares and only
# ever unmasks the sum of the sites' updates.
"$FEDRX" "${ADMIN[@]}" study create "$SECAGG_STUDY"
secagg_started=$(date +%s%N)
timeout 600 "$FEDRX" "${SCIENTIST[@]}" study watch "$SECAGG_ID" --interval 500
secagg_ms=$(( ($(date +%s%N) - secagg_started) / 1000000 ))
"$FEDRX" "${SCIENTIST[@]}" study model "$SECAGG_ID" --out "$RUN/models/secagg.bin"
# Round 1 of both starts from the same initial model: it shows the rounding alone.
"$FEDRX" "${SCIENTIST[@]}" study model tox21-demo --version 1 --out "$RUN/models/federated-v1.bin"
"$FEDRX" "${SCIENTIST[@]}" study model "$SECAGG_ID" --version 1 --out "$RUN/models/secagg-v1.bin"

step "Differentially private study on the same platform: $(grep '^study.name' "$DP_STUDY" | cut -d= -f2- | sed 's/^ *//')"
# Each site clips its update's change and adds Gaussian noise before it
# leaves; the coordinator's accountant charges every round against the budget.
"$FEDRX" "${ADMIN[@]}" study create "$DP_STUDY"
timeout 300 "$FEDRX" "${SCIENTIST[@]}" study watch "$DP_ID" --interval 500
"$FEDRX" "${SCIENTIST[@]}" study model "$DP_ID" --out "$RUN/models/dp.bin"
# The study's report: the epsilon the coordinator's accountant charged, and
# how many rounds made the model.
DP_REPORT=$("$FEDRX" "${SCIENTIST[@]}" study show "$DP_ID")
DP_EPSILON=$(sed -n 's/^privacy: epsilon \([0-9.e+-]*\) spent.*/\1/p' <<<"$DP_REPORT")
DP_ROUNDS=$(sed -n '1s/.*model version \([0-9]*\).*/\1/p' <<<"$DP_REPORT")
if [[ -z "$DP_EPSILON" || -z "$DP_ROUNDS" ]]; then
  echo "demo: the coordinator reported no epsilon or rounds for $DP_ID" >&2
  exit 1
fi
grep '^privacy:' <<<"$DP_REPORT"

step "Baselines on the same network and budget: each site alone, and all data pooled"
for site in "${SITES[@]}"; do
  printf '%-11s ' "$site:"
  "$LAB" train --study "$STUDY" --data "$RUN/store/$site" --out "$RUN/models/$site.bin" | tail -1
done
printf '%-11s ' "pooled:"
"$LAB" train --study "$STUDY" --data "$RUN/store/pooled" --out "$RUN/models/pooled.bin" | tail -1

step "Private heads: four institutions with different tasks share one trunk, each keeps a head for its own tasks (Tox21 NR, Tox21 SR, ClinTox; ToxCast in place of SIDER, whose licence is non-commercial)"
HEADS_STUDY=${FEDRX_DEMO_HEADS_STUDY:-deploy/studies/heads-demo.study}
HEADS_ID=$(study_id "$HEADS_STUDY")
HEADS_SITES=(nr-lab sr-lab clinical-c toxcast-d)
HEADS_INSTITUTIONS=("Nuclear receptor lab" "Stress response lab" "Clinic C" "ToxCast lab D")
HEADS_FILES=(nr-site sr-site clintox-site toxcast-site)
mkdir -p "$RUN/heads"
"$LAB" heads-prepare --tox21 deploy/data/tox21/tox21.csv --clintox deploy/data/clintox/clintox.csv \
  --toxcast deploy/data/toxcast/toxcast.csv --out "$RUN/heads" --seed 7
for i in "${!HEADS_SITES[@]}"; do
  ingest "$RUN/heads/${HEADS_FILES[$i]}.csv" "$RUN/store/${HEADS_SITES[$i]}" brief
done
enrol_sites HEADS_SITES HEADS_INSTITUTIONS
# Each site keeps its private head in its own state directory; the head never leaves it.
start_sites HEADS_SITES HEADS_INSTITUTIONS 9476 "$HEADS_ID" state
"$FEDRX" "${ADMIN[@]}" study create "$HEADS_STUDY"
heads_started=$(date +%s%N)
timeout 600 "$FEDRX" "${SCIENTIST[@]}" study watch "$HEADS_ID" --interval 500
heads_ms=$(( ($(date +%s%N) - heads_started) / 1000000 ))
"$FEDRX" "${SCIENTIST[@]}" study model "$HEADS_ID" --out "$RUN/models/heads-trunk.bin"
# Each institution runs this on its own machine with its own head; here all live on one.
heads_args=()
for i in "${!HEADS_SITES[@]}"; do
  heads_args+=("${HEADS_SITES[$i]}=$RUN/store/${HEADS_SITES[$i]}:$RUN/state/${HEADS_SITES[$i]}/$HEADS_ID.head")
done
"$LAB" heads-compare --study "$HEADS_STUDY" --trunk "$RUN/models/heads-trunk.bin" \
  --sites "$(IFS=,; echo "${heads_args[*]}")" --json "$RUN/private-heads.json"

step "Poisoning, SIMULATED: 10 in-process sites (not site services), 2 send sign-flipped x10 updates; FedAvg against robust rules"
"$LAB" poison --study "$STUDY" --data "$RUN/store/pooled" --test "$RUN/store/test" \
  --json "$RUN/poisoning.json" --sites 10 --attackers 2 --scale 10 --rounds 5 --trim 0.2 \
  --learning-rate 0.003 |
  tail -n +3

step "Secure aggregation: the platform's secure model against plain FedAvg; then 10 SIMULATED sites, 3 leaving after their masked input"
"$LAB" secagg --study "$SECAGG_STUDY" --plain-model "$RUN/models/federated.bin" \
  --secure-model "$RUN/models/secagg.bin" --plain-first "$RUN/models/federated-v1.bin" \
  --secure-first "$RUN/models/secagg-v1.bin" --test "$RUN/store/test" \
  --data "$RUN/store/pooled" --json "$RUN/secagg.json" --sites 10 --dropouts 3 |
  grep -v ' rows loaded$'

step "First-in-human design, asked through the gateway as the scientist"
FIH="$RUN/first-in-human"
mkdir -p "$FIH"
# The CRO proposes the NOAEL from its own ingested SEND study, on its machine
# (ingest/noael.h: body-weight gain and ALT against the concurrent control);
# only the species, the dose and the group evidence go to the platform.
"$FEDRX" "${SCIENTIST[@]}" dose translate --from-study "$RUN/store/cro-c-send" \
  --safety-factor 10 --json "$FIH/dose.json"
MRSD_MG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mrsd_mg"])' "$FIH/dose.json")
# Human PK of the candidate: ASSUMED example parameters (oral, CL 10 L/h, V 50 L,
# ka 1/h, F 0.8), and an ASSUMED rat AUC at the NOAEL of 400 mg.h/L (the
# vendored study carries no toxicokinetics), for the exposure margin.
"$FEDRX" "${SCIENTIST[@]}" dose pk --model oral_1cmt --cl 10 --v 50 --ka 1 --f 0.8 \
  --dose "$MRSD_MG" --tau 24 --doses 7 --noael-auc 400 --json "$FIH/pk.json" |
  sed -n '1,14p'
# A virtual first-in-human trial from the MRSD: between-subject variability on
# PK, an ASSUMED exposure-toxicity curve (AUC50 for a DLT 60 mg.h/L) and
# exposure-response curve (AUC50 15 mg.h/L), BOIN escalation over 5 levels.
"$FEDRX" "${SCIENTIST[@]}" trial virtual --model oral_1cmt --cl 10 --v 50 --ka 1 --f 0.8 \
  --bsv-cv 0.3 --start-from "$FIH/dose.json" --doses-mg "$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["mrsd_mg"]
print(",".join(f"{m * k:.6g}" for k in (1, 3, 10, 30, 60)))' "$FIH/dose.json")" \
  --tox-auc50 60 --tox-hill 2.5 --response-auc50 15 --response-hill 1.5 --response-emax 0.8 \
  --design boin --target 0.3 --max-patients 30 --trials 2000 --population 4000 --seed 17 \
  --json "$FIH/virtual.json" | sed -n '1,16p'
# The three escalation designs on the toxicity the virtual population predicts.
TOX=$(python3 -c 'import json,sys; print(",".join(f"{p:.4f}" for p in json.load(open(sys.argv[1]))["p_dlt"]))' "$FIH/virtual.json")
for design in 3+3 boin crm; do
  "$FEDRX" "${SCIENTIST[@]}" trial escalate --design "$design" --tox "$TOX" --target 0.3 \
    --max-patients 30 --trials 2000 --seed 23 --json "$FIH/escalate-${design/+3/plus3}.json" |
    sed -n '1,9p'
done
# And the phase II that would follow: Simon's optimal two-stage design.
"$FEDRX" "${SCIENTIST[@]}" trial sample-size --test simon_two_stage --p0 0.1 --p1 0.3 \
  --alpha 0.05 --power 0.8 --json "$FIH/simon.json" | head -2
python3 - "$FIH" <<'PY'
import json, os, sys
d = sys.argv[1]
out = {name: json.load(open(os.path.join(d, name + ".json")))
       for name in ("dose", "pk", "virtual", "escalate-3plus3", "escalate-boin",
                    "escalate-crm", "simon")}
json.dump(out, open(os.path.join(d, "first-in-human.json"), "w"), indent=1)
PY
curl -fsS http://127.0.0.1:9483/metrics | grep -E '^fedrx_trial_requests_total' || true

step "Clinical institutions: ClinTox outcomes with the Tox21 results of the same compounds, at three hospitals and a pharma"
# Each institution holds the clinical outcome of its compounds (ClinTox:
# failed in trials for toxicity, FDA approved) and, where Tox21 screened the
# same compound (matched by InChIKey), its Tox21 results. Scaffold-disjoint
# shares and a held-out test set, as for Tox21.
CLIN_SITES=(hospital-d pharma-e hospital-f)
CLIN_INSTITUTIONS=("University Hospital D" "Pharma E" "Hospital F")
mkdir -p "$RUN/clinical"
"$LAB" clinical-prepare --clintox deploy/data/clintox/clintox.csv --tox21 deploy/data/tox21/tox21.csv \
  --out "$RUN/clinical" --sites "$(IFS=,; echo "${CLIN_SITES[*]}")" --shares 0.4,0.35,0.25 --seed 7
for s in "${CLIN_SITES[@]}"; do ingest "$RUN/clinical/$s.csv" "$RUN/store/$s" brief; done
ingest "$RUN/clinical/pooled.csv" "$RUN/store/clintox-pooled" brief
ingest "$RUN/clinical/test.csv" "$RUN/store/clintox-test" brief
enrol_sites CLIN_SITES CLIN_INSTITUTIONS
start_sites CLIN_SITES CLIN_INSTITUTIONS 9490 clintox-demo,reverse-counts
# The clinical model: every round's evaluation also leaves the conformal
# calibration and the embedding statistics at the platform (sums only).
"$FEDRX" "${ADMIN[@]}" study create deploy/studies/clintox-demo.study
timeout 300 "$FEDRX" "${SCIENTIST[@]}" study watch clintox-demo --interval 500
"$FEDRX" "${SCIENTIST[@]}" study model clintox-demo --out "$RUN/models/clintox.bin"
# Reverse translation's evidence: each site counts, over its own compounds,
# the 2x2 tables of (clinical outcome, Tox21 assay); the counts are masked
# (secure aggregation) so the coordinator learns only their sum.
"$FEDRX" "${ADMIN[@]}" study create deploy/studies/reverse-counts.study
timeout 300 "$FEDRX" "${SCIENTIST[@]}" study watch reverse-counts --interval 500

step "ToxCast panel: three screening institutions train the tox service's second panel"
TOXCAST_SITES=(toxcast-g toxcast-h toxcast-i)
TOXCAST_INSTITUTIONS=("Screening lab G" "Pharma H" "CRO I")
mkdir -p "$RUN/toxcast"
# The panel: the assays with enough measured compounds and positives (the
# rule and the counts: deploy/data/toxcast/README.md).
"$LAB" prepare --data deploy/data/toxcast/toxcast.csv --out "$RUN/toxcast" \
  --sites "$(IFS=,; echo "${TOXCAST_SITES[*]}")" --shares 0.5,0.3,0.2 --seed 7 \
  --min-labelled 2500 --min-positives 500 --max-positive-rate 0.4 | tail -n 3
for s in "${TOXCAST_SITES[@]}"; do ingest "$RUN/toxcast/$s.csv" "$RUN/store/$s" brief; done
ingest "$RUN/toxcast/pooled.csv" "$RUN/store/toxcast-pooled" brief
ingest "$RUN/toxcast/test.csv" "$RUN/store/toxcast-test" brief
enrol_sites TOXCAST_SITES TOXCAST_INSTITUTIONS
start_sites TOXCAST_SITES TOXCAST_INSTITUTIONS 9493 toxcast-demo
"$FEDRX" "${ADMIN[@]}" study create deploy/studies/toxcast-demo.study
timeout 300 "$FEDRX" "${SCIENTIST[@]}" study watch toxcast-demo --interval 500
"$FEDRX" "${SCIENTIST[@]}" study model toxcast-demo --out "$RUN/models/toxcast.bin"

step "Domain models through the gateway, as the scientist: toxicity panels, clinical risk and success, reverse translation"
DM="$RUN/domain-models"
mkdir -p "$DM"
# The services switch to new model versions (and their calibration) on their
# own; wait until each serves its study's final version, calibrated.
wait_served() {  # port service study
  local version
  version=$("$FEDRX" "${SCIENTIST[@]}" study show "$3" | sed -n '1s/.*model version \([0-9]*\).*/\1/p')
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$1/metrics" | grep -q "^fedrx_$2_model_version{study=\"$3\"} $version\$" &&
      curl -fsS "http://127.0.0.1:$1/metrics" | grep -q "^fedrx_$2_model_calibrated{study=\"$3\"} 1\$" &&
      return 0
    sleep 0.1
  done
  echo "demo: fedrx-$2 does not serve $3 version $version calibrated; see $RUN/$2.log" >&2
  exit 1
}
wait_served 9484 tox tox21-demo
wait_served 9484 tox toxcast-demo
wait_served 9485 clinical clintox-demo
# Candidates: paracetamol, thalidomide, troglitazone (withdrawn for liver
# injury), an octapeptide (far from the small molecules the sites screened:
# see its domain p-value), and one unparseable entry, refused on its own.
CANDIDATES='CC(=O)Nc1ccc(O)cc1,O=C1CCC(N2C(=O)c3ccccc3C2=O)C(=O)N1,Cc1c(C)c2OC(C)(COc3ccc(CC4SC(=O)NC4=O)cc3)CCc2c(C)c1O,CC[C@H](C)[C@H](NC(=O)[C@H](CC(C)C)NC(=O)[C@@H](NC(=O)[C@H](Cc1ccccc1)NC(=O)[C@H](CO)NC(=O)[C@H](CCCNC(N)=N)NC(=O)CN)C(C)C)C(=O)N[C@@H](Cc1c[nH]c2ccccc12)C(=O)O,C1CC(('
"$FEDRX" "${SCIENTIST[@]}" tox predict --panel tox21 --smiles "$CANDIDATES" --confidence 0.9 \
  --json "$DM/tox21.json"
"$FEDRX" "${SCIENTIST[@]}" tox predict --panel toxcast --smiles "$CANDIDATES" --confidence 0.9 \
  --json "$DM/toxcast.json"
"$FEDRX" "${SCIENTIST[@]}" clinical assess --smiles "$CANDIDATES" --area oncology \
  --confidence 0.9 --json "$DM/clinical.json"
"$FEDRX" "${SCIENTIST[@]}" reverse translate --organ-class "Hepatobiliary disorders" \
  --adverse-event "torsade de pointes" --label CT_TOX,FDA_APPROVED --fdr 0.05 \
  --json "$DM/reverse.json"
# The risk adjustment, evaluated on the held-out ClinTox compounds.
"$LAB" clinical-evaluate --study deploy/studies/clintox-demo.study --test "$RUN/store/clintox-test" \
  --redis "127.0.0.1:$REDIS_PORT" --json "$DM/clinical-evaluation.json"
python3 - "$DM" <<'PY'
import json, os, sys
d = sys.argv[1]
out = {name.replace("-", "_"): json.load(open(os.path.join(d, name + ".json")))
       for name in ("tox21", "toxcast", "clinical", "reverse", "clinical-evaluation")}
json.dump(out, open(os.path.join(d, "domain-models.json"), "w"), indent=1)
PY
for port in 9484 9485 9486; do
  curl -fsS "http://127.0.0.1:$port/metrics" |
    grep -E '^fedrx_(tox|clinical|reverse)_(structures_total|model_version|counts_version)' || true
done

step "Comparison on the held-out scaffold test set"
models=(federated="$RUN/models/federated.bin" pooled="$RUN/models/pooled.bin")
for site in "${SITES[@]}"; do models+=("$site=$RUN/models/$site.bin"); done
"$LAB" compare --study "$STUDY" --test "$RUN/store/test" --json "$RUN/comparison.json" \
  --dp-model "$RUN/models/dp.bin" --dp-study "$DP_STUDY" --dp-epsilon "$DP_EPSILON" \
  --dp-rounds "$DP_ROUNDS" --poisoning "$RUN/poisoning.json" \
  --embed "secure_aggregation=$RUN/secagg.json,private_heads=$RUN/private-heads.json,first_in_human=$FIH/first-in-human.json,domain_models=$RUN/domain-models/domain-models.json" \
  "${models[@]}" | tail -n +2

step "Audit trail: every admitted and refused action, hash-chained in Redis (checked through the gateway)"
"$FEDRX" "${ADMIN[@]}" audit verify
curl -fsS http://127.0.0.1:9465/metrics | grep -E '^fedrx_gateway_authentications_total' || true
for port in 9464 9463; do
  curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^fedrx_coordinator_authentications_total' |
    sed "s/^/replica :$port  /" || true
done

step "Coordinator metrics (excerpt; two replicas share the studies through leases in Redis)"
for port in 9464 9463; do
  curl -fsS "http://127.0.0.1:$port/metrics" |
    grep -E '^fedrx_coordinator_(studies_owned|lease_takeovers_total|rounds_total|updates_accepted_total|updates_rejected_total|validation_mean_roc_auc|model_version|privacy_epsilon_max|privacy_budget_spent_ratio_max)' |
    sed "s/^/replica :$port  /" || true
done
step "First-in-human readiness of four ClinTox drugs none of the sites trained on (deploy/candidates/), through the orchestrator"
# Each assessment is one workflow run (deploy/workflows/first-in-human.yaml):
# the toxicity panels, clinical risk and success, HED/MRSD, reverse translation
# of flagged organ classes and a virtual first-in-human trial, then a report.
REPORTS="$RUN/reports"
mkdir -p "$REPORTS"
declare -A OUTCOME=([paroxetine]="approved" [vilazodone]="approved"
  [vatalanib]="failed in trials for toxicity" [sgi-1776]="stopped for cardiac toxicity")
for c in paroxetine vilazodone vatalanib sgi-1776; do
  "$FEDRX" "${SCIENTIST[@]}" assess "deploy/candidates/$c.yaml" --run-id "demo-$c" \
    --out "$REPORTS" >"$REPORTS/$c.log" 2>&1 ||
    { cat "$REPORTS/$c.log" >&2; echo "demo: assessing $c failed" >&2; exit 1; }
  end="^run demo-$c: (succeeded|partial|failed)"
  printf '%s (ClinTox: %s)\n  verdict: %s\n  %s\n' "$c" "${OUTCOME[$c]}" \
    "$(grep -B1 -E "$end" "$REPORTS/$c.log" | head -n 1)" "$(grep -E "$end" "$REPORTS/$c.log")"
  grep -A2 '^report ' "$REPORTS/$c.log" | tail -n 2
done
# The second workflow, lead-triage: the same four as one series, ranked.
"$FEDRX" "${SCIENTIST[@]}" assess deploy/candidates/series.yaml --workflow lead-triage \
  --run-id demo-series --out "$REPORTS" >"$REPORTS/series.log" 2>&1 ||
  { cat "$REPORTS/series.log" >&2; echo "demo: the lead-triage run failed" >&2; exit 1; }
printf 'series (lead-triage)\n  %s\n' "$(grep -B1 -E '^run demo-series: (succeeded|partial|failed)' "$REPORTS/series.log" | head -n 1)"
grep -A1 '^report ' "$REPORTS/series.log" | tail -n 1
# The federated study's own report: rounds, sites, dropouts, privacy spent.
study_report=$("$FEDRX" "${SCIENTIST[@]}" report create --kind study --subject "$(study_id "$STUDY")" |
  sed -n 's/^report \([^ ]*\) .*/\1/p')
"$FEDRX" "${SCIENTIST[@]}" report get "$study_report" --format html \
  --out "$REPORTS/$study_report.html"
"$FEDRX" "${SCIENTIST[@]}" workflow runs
curl -fsS http://127.0.0.1:9487/metrics | grep -E '^fedrx_orchestrator_(runs_total|steps_total)' || true

step "Prometheus: every service scraped (deploy/prometheus/local.yml, alert rules k8s/base/prometheus/alerts.yml)"
stack_prometheus_summary
echo "Open $PROMETHEUS_URL (Status > Targets, Alerts, Graph); the stack stops when the demo ends (FEDRX_DEMO_HOLD=1 keeps it running)."

printf '\nFederated study took %d.%03d s (with secure aggregation %d.%03d s); the whole demo %d s. Logs: %s/\n' \
  $((fed_ms / 1000)) $((fed_ms % 1000)) $((secagg_ms / 1000)) $((secagg_ms % 1000)) \
  "$(( $(date +%s) - started ))" "$RUN"
printf 'Private-heads study (four institutions) took %d.%03d s\n' $((heads_ms / 1000)) $((heads_ms % 1000))
echo "Comparison (JSON): $(realpath "$RUN/comparison.json")"
if [[ "${FEDRX_DEMO_HOLD:-0}" == 1 ]]; then
  echo "The stack keeps running (Prometheus: $PROMETHEUS_URL); Ctrl-C stops it."
  while sleep 3600; do :; done
fi
