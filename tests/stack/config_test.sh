#!/usr/bin/env bash
# Checks the configs deploy/stack.sh writes for a second stack (the e2e
# test's: another run dir, every port moved by 20000), without starting
# anything: each rewritten deploy/*.conf and deploy/prometheus/local.yml names
# no port of the demo's block and no file of the demo's run dir, every demo
# port it names has moved by exactly the offset, the Prometheus config
# passes `promtool check config` with its rule and file_sd files resolved into
# place, and the stack scripts parse. Prints each problem; exit 1 if any.
#
#   config_test.sh --source DIR --run DIR
set -euo pipefail
SOURCE='' RUN_DIR=''
while (($#)); do
  case $1 in
    --source) SOURCE=$2; shift 2 ;;
    --run) RUN_DIR=$2; shift 2 ;;
    *) echo "config_test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$SOURCE" && -n "$RUN_DIR" ]] || { echo "usage: config_test.sh --source DIR --run DIR" >&2; exit 2; }
RUN_DIR=$(realpath -m "$RUN_DIR")
cd "$SOURCE"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

for script in deploy/stack.sh deploy/demo.sh tests/stack/e2e.sh tests/stack/config_test.sh; do
  bash -n "$script" || fail "$script does not parse"
done

OFFSET=20000
STACK_WHO=stack-config-test
STACK_SKIP_PORT_CHECK=1  # nothing is started: a running e2e test is no conflict
# shellcheck source=deploy/stack.sh
source deploy/stack.sh
stack_init "$RUN_DIR" "$OFFSET" /nonexistent-build
stack_is_default && fail "a stack in $RUN_DIR with offset $OFFSET is taken for the demo's"
[[ "$(stack_conf coordinator)" == "$RUN_DIR/conf/coordinator.conf" ]] ||
  fail "stack_conf coordinator is $(stack_conf coordinator), not the rewritten copy"
[[ "$REDIS_PORT" == 26390 && "$GATEWAY" == tcp://127.0.0.1:25560 &&
   "$PROMETHEUS_URL" == http://127.0.0.1:29090 && "$EXPORTER_ADDR" == 127.0.0.1:29121 ]] ||
  fail "ports: redis $REDIS_PORT gateway $GATEWAY prometheus $PROMETHEUS_URL exporter $EXPORTER_ADDR"

pairs=()
for f in deploy/*.conf; do pairs+=("$f=$RUN_DIR/conf/$(basename "$f")"); done
if [[ -f deploy/prometheus/local.yml ]]; then
  config=$(stack_prometheus_config)
  pairs+=("deploy/prometheus/local.yml=$config")
  /usr/bin/promtool check config "$config" >"$RUN_DIR/promtool.log" 2>&1 ||
    fail "promtool check config $config: $(tail -3 "$RUN_DIR/promtool.log")"
else
  fail "deploy/prometheus/local.yml is missing (the observability helper's scrape config)"
fi

# Compares each source with its copy: every loopback port and redis.port,
# in order, moved by the offset; nothing left in the demo's block or run dir.
/usr/bin/python3 - "$OFFSET" "$RUN_DIR" "$SOURCE" "${pairs[@]}" <<'PY' || failures=$((failures + 1))
import os, re, sys
offset, run, root = int(sys.argv[1]), sys.argv[2], os.path.realpath(sys.argv[3])
port_re = re.compile(r"\b(?:127\.0\.0\.1|localhost):(\d+)|^\s*redis\.port\s*=\s*(\d+)", re.M)
bad = 0
def ports(text):
    return [int(a or b) for a, b in port_re.findall(text)]
for pair in sys.argv[4:]:
    src, dst = pair.split("=", 1)
    a, b = open(src).read(), open(dst).read()
    pa, pb = ports(a), ports(b)
    if [p + offset for p in pa] != pb:
        print("FAIL: %s: ports %s became %s, not each + %d" % (dst, pa, pb, offset)); bad += 1
    demo = [p for p in pb if p < offset]
    if demo:
        print("FAIL: %s still names the demo's ports %s" % (dst, demo)); bad += 1
    if ".fedrx-run" in b:
        print("FAIL: %s still names the demo's run dir .fedrx-run" % dst); bad += 1
    # Paths it names (key files, rule and file_sd files) are absolute or
    # repository-relative; none is under the demo's run dir.
    for m in re.finditer(r"(/[^\s'\",\]]+)", b):
        p = m.group(1)
        if p.startswith(os.path.join(root, ".fedrx-run")):
            print("FAIL: %s names %s in the demo's run dir" % (dst, p)); bad += 1
    print("ok: %s -> %s (%d ports moved)" % (src, dst, len(pb)))
if dst.endswith(".yml") and run + "/prometheus/sites.json" not in b:
    print("FAIL: %s does not read the sites from %s/prometheus/sites.json" % (dst, run)); bad += 1
sys.exit(1 if bad else 0)
PY

if ((failures)); then
  echo "$failures problem(s)"
  exit 1
fi
echo "stack configs: all checks passed"
