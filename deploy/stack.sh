# shellcheck shell=bash
# shellcheck disable=SC2034  # sets variables for the scripts that source it
# The local fedrx stack as processes on loopback: Redis, the platform's CURVE
# keys, the coordinator, the domain services, the orchestrator, the report
# service, the gateway, the sites, fedrx-ingest, and Prometheus with the Redis
# exporter scraping all of them. Sourced (not run) by deploy/demo.sh and by the
# end-to-end test tests/stack/e2e.sh; it only defines functions and variables.
#
# One stack is described by a run directory and a port offset, so a second
# stack (the test's) runs beside the demo's without sharing a port or a file:
#   stack_init RUN_DIR PORT_OFFSET BUILD_DIR
# Every port of deploy/*.conf and deploy/prometheus/local.yml is moved by the
# offset (the demo's 5560-5590, 9464-9495, 6390, 9090, 9121 with offset 0), and
# every .fedrx-run/ path there is moved into RUN_DIR. With offset 0 and run
# dir .fedrx-run the files of deploy/ are used as they are; otherwise copies
# rewritten that way are written to RUN_DIR/conf/ and RUN_DIR/prometheus/.
#
# Processes started here are recorded in the array `pids` (stack_stop ends
# them) and, when they serve HTTP, in RUN_DIR/targets.tsv (name, address) so
# a test can check that Prometheus scrapes every one. Functions print nothing
# on success except what the commands they run print; a failure says which
# process and where its log is, and exits.
#
# Callers must run from the repository root (the configs name deploy/ paths).

STACK_WHO=${STACK_WHO:-stack}
pids=()

# Sets the stack's run dir, port offset and binaries; clears and creates the
# run dir's folders and writes the (rewritten) configs.
stack_init() {  # run-dir port-offset build-dir
  RUN=$1
  STACK_OFFSET=$2
  BIN=$3
  FEDRX="$BIN/services/cli/fedrx"
  LAB="$BIN/services/lab/fedrx-lab"
  KEYS="$RUN/keys"
  REDIS_PORT=$(stack_port 6390)
  GATEWAY="tcp://127.0.0.1:$(stack_port 5560)"
  PROMETHEUS_URL="http://127.0.0.1:$(stack_port 9090)"
  EXPORTER_ADDR="127.0.0.1:$(stack_port 9121)"
  [[ "${STACK_SKIP_PORT_CHECK:-0}" == 1 ]] || stack_check_ports_free
  rm -rf "$RUN"
  mkdir -p "$RUN/data" "$RUN/models" "$RUN/keys" "$RUN/conf" "$RUN/prometheus"
  : >"$RUN/targets.tsv"
  printf '[]\n' >"$RUN/prometheus/sites.json"
  STACK_SITES_SD=()
  STACK_SITE_PIDS=()
  if stack_is_default; then
    STACK_CONF=deploy
  else
    STACK_CONF="$RUN/conf"
    local f
    for f in deploy/*.conf; do
      stack_rewrite "$f" "$RUN/conf/$(basename "$f")"
    done
  fi
}

# Refuses to start over another stack: if any port of this block already
# answers (a demo or test still running, or another program), this stack's
# clients would talk to that one's services.
stack_check_ports_free() {
  local p busy=()
  for p in 5560 5570 5571 {5580..5586} 6390 9090 9121 9463 9464 9465 {9466..9495}; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$(stack_port "$p")") 2>/dev/null; then
      busy+=("$(stack_port "$p")")
    fi
  done
  if ((${#busy[@]})); then
    echo "$STACK_WHO: port(s) ${busy[*]} already in use on 127.0.0.1 (another stack running" \
      "with port offset $STACK_OFFSET?); stop it first" >&2
    exit 1
  fi
}

# True for the demo's own stack: offset 0 in .fedrx-run, where deploy/'s
# files apply unchanged.
stack_is_default() {
  [[ "$STACK_OFFSET" == 0 && "$(realpath -m "$RUN")" == "$(realpath -m .fedrx-run)" ]]
}

stack_port() {  # demo-port
  echo $(($1 + STACK_OFFSET))
}

# Copies a config (key = value, or Prometheus YAML) with every loopback port
# moved by the offset, the redis.port key too, and .fedrx-run/ paths moved
# into the run dir. With `yaml`, relative file paths (rule files, file_sd
# files) are made absolute against the source's folder first, as Prometheus
# resolves them, then any under .fedrx-run/ moved likewise.
stack_rewrite() {  # src dst [yaml]
  python3 - "$1" "$2" "$STACK_OFFSET" "$(realpath -m "$RUN")" "$(pwd)" "${3:-}" <<'PY'
import os, re, sys
src, dst, offset, run, root, kind = sys.argv[1:7]
offset = int(offset)
text = open(src).read()
def port(m):
    return "%s:%d" % (m.group(1), int(m.group(2)) + offset)
text = re.sub(r"\b(127\.0\.0\.1|localhost):(\d+)", port, text)
text = re.sub(r"^(\s*redis\.port\s*=\s*)(\d+)",
              lambda m: "%s%d" % (m.group(1), int(m.group(2)) + offset), text, flags=re.M)
demo_run = os.path.join(root, ".fedrx-run")
if kind == "yaml":
    base = os.path.dirname(os.path.abspath(src))
    def path(m):
        p = m.group(2)
        if not os.path.isabs(p):
            p = os.path.normpath(os.path.join(base, p))
        if p == demo_run or p.startswith(demo_run + "/"):
            p = run + p[len(demo_run):]
        return m.group(1) + p + m.group(3)
    # A path is a (possibly quoted) YAML scalar ending in .yml/.yaml/.json.
    text = re.sub(r"""(^\s*-\s*['"]?|[\[,]\s*['"]?)([^\s'",\[\]#]+\.(?:ya?ml|json))(['"]?)""",
                  path, text, flags=re.M)
# Relative .fedrx-run/ paths (those made absolute above are left alone).
text = re.sub(r"(?<![\w/.-])\.fedrx-run/", lambda m: run + "/", text)
open(dst, "w").write(text)
PY
}

# The config file of one service (deploy/<name>.conf or its rewritten copy).
stack_conf() {  # name
  echo "$STACK_CONF/$1.conf"
}

# Records a process that serves /metrics, for the targets check.
stack_target() {  # name port
  printf '%s\t127.0.0.1:%s\n' "$1" "$2" >>"$RUN/targets.tsv"
}

wait_ready() {  # url what
  for _ in $(seq 1 300); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$STACK_WHO: $2 did not become ready ($1); its log is in $RUN/" >&2
  exit 1
}

# Ends every process this stack started (the newest first), then waits for
# them; a stopped one (a test freezes a site) is continued to take the TERM.
stack_stop() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null || true
    kill -CONT "${pids[$i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

stack_start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN" --save "" --appendonly yes \
    >"$RUN/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$STACK_WHO: Redis did not answer on port $REDIS_PORT; see $RUN/redis.log" >&2
  exit 1
}

# The Debian prometheus-redis-exporter, for Redis's memory, clients and keys.
stack_start_redis_exporter() {
  /usr/bin/prometheus-redis-exporter --redis.addr="redis://127.0.0.1:$REDIS_PORT" \
    --web.listen-address="$EXPORTER_ADDR" >"$RUN/redis-exporter.log" 2>&1 &
  pids+=($!)
  wait_ready "http://$EXPORTER_ADDR/metrics" "prometheus-redis-exporter"
  stack_target redis-exporter "${EXPORTER_ADDR#*:}"
}

# The scrape config Prometheus runs with: deploy/prometheus/local.yml (the
# observability config: static targets, the sites from a file_sd file in the
# run dir, the alert rules), rewritten for another run dir or port block.
# STACK_PROMETHEUS_CONFIG names another source config.
stack_prometheus_config() {
  local src=${STACK_PROMETHEUS_CONFIG:-deploy/prometheus/local.yml}
  if [[ ! -f "$src" ]]; then
    echo "$STACK_WHO: the Prometheus config $src is missing" >&2
    exit 1
  fi
  if stack_is_default && [[ "$src" == deploy/prometheus/local.yml ]]; then
    echo "$src"
  else
    stack_rewrite "$src" "$RUN/prometheus/local.yml" yaml
    echo "$RUN/prometheus/local.yml"
  fi
}

# The Debian Prometheus (2.42), its storage in the run dir; returns once it
# is ready (the sites join through the file_sd file as they start).
stack_start_prometheus() {
  local config
  config=$(stack_prometheus_config) || exit 1
  /usr/bin/promtool check config "$config" >"$RUN/prometheus/check.log" 2>&1 || {
    cat "$RUN/prometheus/check.log" >&2
    echo "$STACK_WHO: promtool refuses $config" >&2
    exit 1
  }
  /usr/bin/prometheus --config.file="$config" --storage.tsdb.path="$RUN/prometheus/data" \
    --web.listen-address="127.0.0.1:$(stack_port 9090)" --log.level=warn \
    >"$RUN/prometheus.log" 2>&1 &
  pids+=($!)
  wait_ready "$PROMETHEUS_URL/-/ready" prometheus
  stack_target prometheus "$(stack_port 9090)"
}

# The platform's keys: the coordinator admits only the gateway's CURVE key,
# the domain services the gateway's and the orchestrator's; the audit key
# stays with the gateway. Prints what the key commands print.
stack_make_keys() {
  "$FEDRX" keys generate --out "$KEYS/coordinator.key" >/dev/null
  "$FEDRX" keys public "$KEYS/coordinator.key" --out "$KEYS/coordinator.pub"
  "$FEDRX" keys generate --out "$KEYS/gateway.key" >/dev/null
  "$FEDRX" keys public "$KEYS/gateway.key" --out "$KEYS/gateway.pub"
  GATEWAY_PUBLIC_KEY=$("$FEDRX" keys public "$KEYS/gateway.key")
  printf '# Who may connect to the coordinator: <id> <role> <public key>\ngateway gateway %s\n' \
    "$GATEWAY_PUBLIC_KEY" >"$KEYS/coordinator-clients"
  # The domain services behind the gateway admit the gateway's key only, too.
  cp "$KEYS/coordinator-clients" "$KEYS/platform-clients"
  local svc
  for svc in translational trial tox clinical reverse orchestrator report; do
    "$FEDRX" keys generate --out "$KEYS/$svc.key" >/dev/null
    "$FEDRX" keys public "$KEYS/$svc.key" --out "$KEYS/$svc.pub"
  done
  # The orchestrator calls the domain services and the report service itself
  # (with its own key), so they admit it beside the gateway.
  printf 'orchestrator orchestrator %s\n' "$("$FEDRX" keys public "$KEYS/orchestrator.key")" \
    >>"$KEYS/platform-clients"
  # The audit trail's HMAC key stays with the gateway (and the bootstrap CLI),
  # never in Redis: whoever can write Redis still cannot rebuild the chain.
  "$FEDRX" keys audit --out "$KEYS/audit.key" >/dev/null
}

# The first admin, enrolled straight into Redis; sets the CLI arguments of
# the admin and of a scientist (who is enrolled later, through the gateway).
stack_bootstrap_admin() {
  "$FEDRX" institutions enrol --redis "127.0.0.1:$REDIS_PORT" --id platform-admin \
    --name "Platform team" --role admin --key-out "$KEYS/platform-admin.key" \
    --audit-key-file "$KEYS/audit.key"
  ADMIN=(--gateway "$GATEWAY" --key-file "$KEYS/platform-admin.key"
    --server-key-file "$KEYS/gateway.pub")
  SCIENTIST=(--gateway "$GATEWAY" --key-file "$KEYS/scientist.key"
    --server-key-file "$KEYS/gateway.pub")
}

# Starts one platform service from its config; extra VAR=value arguments are
# environment overrides for it. Does not wait. The stack_start_* functions
# pass STACK_ENV_<name> (an array of VAR=value, empty by default) for each.
stack_spawn() {  # name binary [VAR=value...]
  local name=$1 binary=$2
  shift 2
  env "$@" "$BIN/$binary" --config "$(stack_conf "$name")" >"$RUN/$name.log" 2>&1 &
  pids+=($!)
}

# Metrics/health port of each platform service (deploy/*.conf, offset 0).
declare -A STACK_HTTP_PORT=([coordinator]=9464 [gateway]=9465 [translational]=9482
  [trial]=9483 [tox]=9484 [clinical]=9485 [reverse]=9486 [orchestrator]=9487 [report]=9488)

stack_wait_service() {  # name
  local port
  port=$(stack_port "${STACK_HTTP_PORT[$1]}")
  wait_ready "http://127.0.0.1:$port/readyz" "$1"
  stack_target "$1" "$port"
}

# Two coordinator replicas, as on Kubernetes: they share the studies through
# leases in Redis (a study is driven by one replica at a time; when it dies the
# other takes the study over). coordinator-0 listens where
# deploy/coordinator.conf says, coordinator-1 on 5571 (metrics 9463); the
# gateway knows both (gateway.coordinator_endpoint).
stack_start_coordinator() {
  stack_spawn coordinator services/coordinator/fedrx-coordinator "${STACK_ENV_coordinator[@]}" \
    FEDRX_COORDINATOR_REPLICA_ID=coordinator-0
  env "${STACK_ENV_coordinator[@]}" FEDRX_COORDINATOR_REPLICA_ID=coordinator-1 \
    FEDRX_COORDINATOR_ENDPOINT="tcp://127.0.0.1:$(stack_port 5571)" \
    FEDRX_HTTP_LISTEN="127.0.0.1:$(stack_port 9463)" \
    "$BIN/services/coordinator/fedrx-coordinator" --config "$(stack_conf coordinator)" \
    >"$RUN/coordinator-1.log" 2>&1 &
  pids+=($!)
  stack_wait_service coordinator
  wait_ready "http://127.0.0.1:$(stack_port 9463)/readyz" coordinator-1
  stack_target coordinator "$(stack_port 9463)"
}

# The stateless translational and trial services, then the ML services (tox,
# clinical, reverse), which read the federated models from Redis as the
# coordinator publishes them.
stack_start_domain_services() {
  local svc
  for svc in translational trial; do
    local -n extra="STACK_ENV_$svc"
    stack_spawn "$svc" "services/$svc/fedrx-$svc" "${extra[@]}"
  done
  stack_wait_service translational
  stack_wait_service trial
  for svc in tox clinical reverse; do
    local -n extra="STACK_ENV_$svc"
    stack_spawn "$svc" "services/$svc/fedrx-$svc" "${extra[@]}"
  done
  stack_wait_service tox
  stack_wait_service clinical
  stack_wait_service reverse
}
STACK_ENV_coordinator=() STACK_ENV_gateway=() STACK_ENV_translational=() STACK_ENV_trial=()
STACK_ENV_tox=() STACK_ENV_clinical=() STACK_ENV_reverse=() STACK_ENV_report=()
STACK_ENV_orchestrator=()

# The report service, then the orchestrator (which refuses to start if one of
# deploy/workflows/ is invalid).
stack_start_orchestration() {
  local svc
  for svc in report orchestrator; do
    local -n extra="STACK_ENV_$svc"
    stack_spawn "$svc" "services/$svc/fedrx-$svc" "${extra[@]}"
  done
  stack_wait_service report
  stack_wait_service orchestrator
}

stack_start_gateway() {
  stack_spawn gateway gateway/fedrx-gateway "${STACK_ENV_gateway[@]}"
  stack_wait_service gateway
}

# fedrx-ingest watching an inbox, its stores next to it; metrics on `port`
# (a demo port, moved by the offset).
stack_start_ingest() {  # name inbox stores demo-port
  local port
  port=$(stack_port "$4")
  mkdir -p "$2" "$3"
  FEDRX_INGEST_INBOX="$2" FEDRX_INGEST_STORES="$3" \
    FEDRX_INGEST_POLL_INTERVAL=200ms FEDRX_HTTP_LISTEN="127.0.0.1:$port" \
    "$BIN/services/ingest_service/fedrx-ingest" >"$RUN/$1.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$port/readyz" "fedrx-ingest ($1)"
  stack_target "$1" "$port"
}

# Enrols institutions as sites through the gateway, as the admin; each
# receives its CURVE key pair. Arguments name arrays: ids, institution names.
enrol_sites() {  # ids-array names-array
  local -n ids=$1 names=$2
  local i
  for i in "${!ids[@]}"; do
    "$FEDRX" "${ADMIN[@]}" institutions enrol --id "${ids[$i]}" \
      --name "${names[$i]}" --role site --key-out "$KEYS/${ids[$i]}.key"
  done
}

# Starts one site process per institution next to its own store
# ($RUN/store/<id>), metrics on consecutive ports from `first-port` (a demo
# port, moved by the offset), approving `approved`; with `state`, each keeps
# its private heads in $RUN/state/<id>. Returns once every site is ready and
# listed in the sites' file_sd file for Prometheus.
start_sites() {  # ids-array names-array first-port approved [state]
  local -n ids=$1 names=$2
  local first_port approved=$4 with_state=${5:-} i site
  first_port=$(stack_port "$3")
  for i in "${!ids[@]}"; do
    site=${ids[$i]}
    local state=()
    if [[ -n "$with_state" ]]; then
      mkdir -p "$RUN/state/$site"
      state=(FEDRX_SITE_STATE_DIR="$RUN/state/$site")
    fi
    env FEDRX_SITE_ID="$site" FEDRX_SITE_INSTITUTION="${names[$i]}" \
      FEDRX_SITE_STORE="$RUN/store/$site" "${state[@]}" \
      FEDRX_HTTP_LISTEN="127.0.0.1:$((first_port + i))" \
      FEDRX_SITE_KEY_FILE="$KEYS/$site.key" FEDRX_SITE_GATEWAY_PUBLIC_KEY="$GATEWAY_PUBLIC_KEY" \
      FEDRX_SITE_APPROVED_STUDIES="$approved" \
      "$BIN/services/site/fedrx-site" --config "$(stack_conf site)" >"$RUN/$site.log" 2>&1 &
    pids+=($!)
    STACK_SITE_PIDS+=("$site $!")
  done
  for i in "${!ids[@]}"; do
    wait_ready "http://127.0.0.1:$((first_port + i))/readyz" "${ids[$i]}"
    stack_target "site ${ids[$i]}" "$((first_port + i))"
    STACK_SITES_SD+=("${ids[$i]}	127.0.0.1:$((first_port + i))	${names[$i]}")
  done
  stack_write_sites_sd
}

# The process id of a site start_sites started.
stack_site_pid() {  # site-id
  local line
  for line in "${STACK_SITE_PIDS[@]}"; do
    [[ "${line%% *}" == "$1" ]] && { echo "${line#* }"; return 0; }
  done
  echo "$STACK_WHO: no site $1 was started" >&2
  return 1
}

# Ends one site for good (SIGKILL: also when it is stopped) and takes it out
# of the sites' file_sd file and of targets.tsv, so Prometheus stops
# scraping it and nobody expects it up.
stack_retire_site() {  # site-id
  local pid line kept=() i
  pid=$(stack_site_pid "$1") || exit 1
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for i in "${!pids[@]}"; do [[ "${pids[$i]}" == "$pid" ]] && unset 'pids[i]'; done
  pids=("${pids[@]}")
  for line in "${STACK_SITES_SD[@]}"; do [[ "${line%%	*}" == "$1" ]] || kept+=("$line"); done
  STACK_SITES_SD=("${kept[@]}")
  stack_write_sites_sd
  awk -F '\t' -v name="site $1" '$1 != name' "$RUN/targets.tsv" >"$RUN/targets.tsv.tmp"
  mv "$RUN/targets.tsv.tmp" "$RUN/targets.tsv"
}

# The sites' file_sd file (JSON, rewritten whole through a rename, as
# Prometheus expects): one target group per site, labelled with its id and
# institution.
stack_write_sites_sd() {
  printf '%s\n' "${STACK_SITES_SD[@]}" | python3 -c '
import json, sys
groups = []
for line in sys.stdin.read().splitlines():
    if not line:
        continue
    site, address, institution = line.split("\t")
    groups.append({"targets": [address], "labels": {"site": site, "institution": institution}})
json.dump(groups, sys.stdout, indent=1)
print()' >"$RUN/prometheus/sites.json.tmp"
  mv "$RUN/prometheus/sites.json.tmp" "$RUN/prometheus/sites.json"
}

# A short account of what Prometheus sees, once every target has been scraped
# after this call began: targets up per job, a few key series, firing alerts.
stack_prometheus_summary() {
  python3 - "$PROMETHEUS_URL" "$(date +%s.%N)" "$RUN/targets.tsv" <<'PY'
import json, re, sys, time, datetime, urllib.parse, urllib.request
url, since = sys.argv[1], float(sys.argv[2])
expected = {l.split("\t")[1].strip() for l in open(sys.argv[3]) if l.strip()}
def get(path, **params):
    q = ("?" + urllib.parse.urlencode(params)) if params else ""
    with urllib.request.urlopen(url + path + q, timeout=10) as r:
        return json.load(r)["data"]
def scraped(t):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", t["lastScrape"])
    if not m:
        return 0.0
    return (datetime.datetime.fromisoformat(m.group(1) + "+00:00").timestamp()
            + float("0." + (m.group(2) or "0")))
targets = []
for _ in range(240):  # at most 2 minutes: a few scrape intervals
    targets = get("/api/v1/targets", state="active")["activeTargets"]
    addresses = {t["discoveredLabels"].get("__address__") for t in targets}
    if expected <= addresses and all(scraped(t) > since for t in targets):
        break
    time.sleep(0.5)
jobs = {}
for t in targets:
    up, total = jobs.get(t["labels"]["job"], (0, 0))
    jobs[t["labels"]["job"]] = (up + (t["health"] == "up"), total + 1)
n_up = sum(u for u, _ in jobs.values())
print("targets up: %d of %d (%s)" % (n_up, len(targets),
      ", ".join("%s %d/%d" % (j, u, n) for j, (u, n) in sorted(jobs.items()))))
for address in sorted(expected - {t["discoveredLabels"].get("__address__") for t in targets}):
    print("  not scraped: %s" % address)
for t in targets:
    if t["health"] != "up":
        print("  down: %s %s: %s" % (t["labels"]["job"], t["labels"]["instance"], t["lastError"]))
series = [
    ("federated rounds closed", 'sum(fedrx_coordinator_rounds_total{outcome="closed"})'),
    ("site updates accepted", "sum(fedrx_coordinator_updates_accepted_total)"),
    ("sites up", "count(fedrx_site_up == 1)"),
    ("messages through the gateway", "sum(fedrx_gateway_messages_total)"),
    ("workflow runs (orchestrator)", "sum(fedrx_orchestrator_runs_total)"),
    ("tox / clinical requests",
     "sum(fedrx_tox_requests_total) or vector(0)", "sum(fedrx_clinical_requests_total) or vector(0)"),
    ("Redis memory used (MiB)", "max(redis_memory_used_bytes) / 2^20"),
]
for what, *queries in series:
    values = []
    for q in queries:
        r = get("/api/v1/query", query=q)["result"]
        values.append("%g" % round(float(r[0]["value"][1]), 1) if r else "none")
    print("  %-30s %s" % (what + ":", " / ".join(values)))
alerts = sorted({"%s (%s)" % (a["labels"].get("alertname", "?"), a.get("state"))
                 for a in get("/api/v1/alerts")["alerts"]})
print("  %-30s %s" % ("alerts (alerts.yml):", ", ".join(alerts) if alerts else "none"))
PY
}
