#!/usr/bin/python3
"""Checks a running local stack through its Prometheus's HTTP API (stdlib only).

Run by tests/stack/e2e.sh after a study and an assessment; prints one line per
check and exits 1 if any failed, naming what failed. It waits (a bounded
number of polls, never a timing assertion) until every target Prometheus has
been configured with has been scraped after --since, then checks:

  1. targets: every active target (job, instance) has health "up" and its
     `up` series is 1; the active targets are exactly the processes the
     stack started (--targets, a TSV of name and address written by
     deploy/stack.sh);
  2. series: the values this run must have produced (rounds closed and
     updates accepted by the study, messages through the gateway, the
     orchestrator's run, tox and clinical requests, Redis memory, ...);
  3. names: every metric name printed by --metric-names (the observability
     script: the names the dashboards and alert rules reference) is among
     Prometheus's metric names (/api/v1/label/__name__/values); a histogram
     or summary counts under its base name. A missing one is named with the
     files that reference it; each name pattern (`~regex`, with --patterns)
     matches at least one name.
  4. rules: the alert rules are loaded and every rule evaluates without error
     (firing alerts are listed for information);
"""

import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

# Files that may reference metric names (for naming where a missing one is used).
REFERENCING_FILES = ["deploy/grafana/**/*.json", "k8s/base/prometheus/*.yml",
                     "deploy/prometheus/**/*.yml"]


def get(url, path, params=None):
    full = url + path
    if params:
        full += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(full, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError("%s: %s" % (full, body))
    return body["data"]


def parse_time(text):
    """RFC 3339 with up to nanoseconds ("2026-11-26T21:41:05.662932133Z") -> epoch s."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        return 0.0
    base = datetime.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z"
                                                          else m.group(3)))
    return base.timestamp() + float("0." + (m.group(2) or "0"))


def duration(text):
    """Prometheus duration ("5s", "1m", "1m30s") -> seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text))


class Checks:
    def __init__(self):
        self.failures = []

    def ok(self, what):
        print("  ok    %s" % what)

    def fail(self, what):
        print("  FAIL  %s" % what)
        self.failures.append(what)


def wait_for_scrapes(url, since, expected, polls):
    """Active targets once they are exactly the expected addresses (changes to
    the sites' file reach the scrape manager a few seconds late) and each has
    been scraped after `since`; else the last poll's."""
    targets = []
    for _ in range(polls):
        targets = get(url, "/api/v1/targets", {"state": "active"})["activeTargets"]
        addresses = {t["discoveredLabels"].get("__address__") for t in targets}
        if (targets and expected == addresses
                and all(parse_time(t["lastScrape"]) > since for t in targets)):
            return targets, True
        time.sleep(0.5)
    return targets, False


def check_targets(url, since, expected_file, polls, checks):
    print("targets (Prometheus %s):" % url)
    expected = {}
    for line in open(expected_file):
        if line.strip():
            name, address = line.rstrip("\n").split("\t")
            expected[address] = name
    targets, fresh = wait_for_scrapes(url, since, set(expected), polls)
    if not targets:
        checks.fail("Prometheus has no active targets")
        return
    if not fresh:
        stale = ["%s %s" % (t["labels"].get("job"), t["labels"].get("instance"))
                 for t in targets if parse_time(t["lastScrape"]) <= since]
        if stale:
            checks.fail("not scraped since the study ended: " + ", ".join(stale))
    up = {}
    for r in get(url, "/api/v1/query", {"query": "up"})["result"]:
        up[(r["metric"].get("job"), r["metric"].get("instance"))] = float(r["value"][1])
    addresses = set()
    for t in sorted(targets, key=lambda t: (t["labels"].get("job", ""),
                                            t["labels"].get("instance", ""))):
        job, instance = t["labels"].get("job"), t["labels"].get("instance")
        addresses.add(t["discoveredLabels"].get("__address__"))
        value = up.get((job, instance))
        what = "job=%s instance=%s up=%s" % (job, instance,
                                             "missing" if value is None else "%g" % value)
        if t["health"] == "up" and value == 1:
            checks.ok(what)
        else:
            checks.fail("%s health=%s %s" % (what, t["health"], t.get("lastError", "")))
    # Every process the stack started is scraped, and nothing else is.
    for address, name in expected.items():
        if address in addresses:
            checks.ok("%s (%s) is a target" % (name, address))
        else:
            checks.fail("%s (%s) was started but is no Prometheus target" % (name, address))
    for t in targets:
        if t["discoveredLabels"].get("__address__") not in expected:
            checks.fail("job=%s instance=%s is configured but the stack started nothing there"
                        % (t["labels"].get("job"), t["labels"].get("instance")))


def check_series(url, study, checks):
    # (what, PromQL, comparison, bound): each query must return a value that
    # satisfies the comparison; no result at all fails too.
    series = [
        ("rounds closed (study of 2 rounds)",
         'sum(fedrx_coordinator_rounds_total{outcome="closed"})', ">=", 2),
        ("updates accepted (2 sites x 2 rounds)",
         "sum(fedrx_coordinator_updates_accepted_total)", ">=", 4),
        ("coordinator model version", "max(fedrx_coordinator_model_version)", ">=", 2),
        ("sites that trained both rounds", "count(fedrx_site_rounds_trained_total >= 2)",
         ">=", 2),
        ("sites dropped from a round (the frozen site)",
         "sum(fedrx_coordinator_dropouts_total)", ">=", 1),
        ("sites up (the frozen one removed)", "count(fedrx_site_up == 1)", ">=", 2),
        ("sites connected to the gateway", "max(fedrx_gateway_sites_connected)", ">=", 2),
        ("messages through the gateway", "sum(fedrx_gateway_messages_total)", ">", 0),
        ("audit records admitted", 'sum(fedrx_gateway_audit_records_total{decision="admitted"})',
         ">", 0),
        ("orchestrator workflow runs", "sum(fedrx_orchestrator_runs_total)", ">=", 1),
        ("orchestrator steps succeeded",
         'sum(fedrx_orchestrator_steps_total{state="succeeded"})', ">=", 1),
        ("reports written", 'sum(fedrx_report_reports_total{result="ok"})', ">=", 1),
        ("tox requests", "sum(fedrx_tox_requests_total)", ">", 0),
        ("tox requests answered ok", 'sum(fedrx_tox_requests_total{code="ok"})', ">", 0),
        ("tox serves the study's model",
         'max(fedrx_tox_model_version{study="%s"})' % study, ">=", 2),
        ("clinical requests", "sum(fedrx_clinical_requests_total)", ">", 0),
        ("reverse requests", "sum(fedrx_reverse_requests_total)", ">", 0),
        ("translational requests", "sum(fedrx_translational_requests_total)", ">", 0),
        ("trial requests", "sum(fedrx_trial_requests_total)", ">", 0),
        ("ingest runs ok", 'sum(fedrx_ingest_runs_total{outcome="ok"})', ">=", 1),
        ("ingested records kept", 'sum(fedrx_ingest_records_total{outcome="kept"})', ">", 0),
        ("SEND study rows mapped", 'sum(fedrx_ingest_study_rows_total{outcome="mapped"})',
         ">", 0),
        ("ingest runs failed (the broken file)",
         'sum(fedrx_ingest_runs_total{outcome="failed"})', ">=", 1),
        ("degraded operations counted (the failed ingest)",
         'sum(fedrx_ingest_errors_total{component="ingest"})', ">=", 1),
        ("Redis up (exporter)", "max(redis_up)", "==", 1),
        ("Redis memory used", "max(redis_memory_used_bytes)", ">", 0),
    ]
    compare = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "==": lambda a, b: a == b}
    print("series:")
    for what, query, op, bound in series:
        result = get(url, "/api/v1/query", {"query": query})["result"]
        if not result:
            checks.fail("%s: %s has no value" % (what, query))
            continue
        value = float(result[0]["value"][1])
        line = "%s: %s = %g (%s %g)" % (what, query, value, op, bound)
        if compare[op](value, bound):
            checks.ok(line)
        else:
            checks.fail(line)


def names_by_file(script, root):
    """{name: [files]}: the script run on each dashboard and rule file alone."""
    by_name = {}
    inputs = sorted(glob.glob(os.path.join(root, "deploy/grafana/dashboards/*.json")))
    inputs += sorted(glob.glob(os.path.join(root, "k8s/base/prometheus/alerts.yml")))
    for path in inputs:
        proc = subprocess.run([sys.executable, script, path], cwd=root, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            continue
        for line in proc.stdout.splitlines():
            if line.split() and not line.startswith(("#", "~")):
                by_name.setdefault(line.split()[0], []).append(os.path.relpath(path, root))
    return by_name


def referencing_files(name, root):
    """Files naming `name` literally (when the script cannot say)."""
    found = []
    pattern = re.compile(r"\b%s\b" % re.escape(name))
    for g in REFERENCING_FILES:
        for path in sorted(glob.glob(os.path.join(root, g), recursive=True)):
            try:
                if pattern.search(open(path, encoding="utf-8", errors="replace").read()):
                    found.append(os.path.relpath(path, root))
            except OSError:
                pass
    return found


def check_names(url, script, root, checks):
    print("metric names referenced by dashboards and alert rules (%s):" % script)
    if not os.path.isfile(os.path.join(root, script)):
        checks.fail("%s is missing: cannot list the dashboards' and rules' metric names" % script)
        return
    # With --patterns the script also prints the name patterns the dashboards
    # select by (`~<regex>`); each must match some name too.
    proc = subprocess.run([sys.executable, script, "--patterns"], cwd=root, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        proc = subprocess.run([sys.executable, script], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        checks.fail("%s exited %d: %s" % (script, proc.returncode, proc.stderr.strip()[-500:]))
        return
    wanted = {}
    patterns = []
    for line in proc.stdout.splitlines():
        fields = line.split()
        if fields and fields[0].startswith("~"):
            patterns.append(fields[0][1:])
            continue
        if not fields or fields[0].startswith("#"):
            continue
        # One name a line; anything after it is taken as where it is referenced.
        wanted.setdefault(fields[0], []).extend(fields[1:])
    if not wanted:
        checks.fail("%s printed no metric names" % script)
        return
    names = set(get(url, "/api/v1/label/__name__/values"))
    present = 0
    by_file = None
    for name in sorted(wanted):
        forms = [name, name + "_bucket", name + "_count", name + "_sum"]
        if any(f in names for f in forms):
            present += 1
            continue
        if by_file is None:
            by_file = names_by_file(script, root)
        where = (wanted[name] or by_file.get(name) or referencing_files(name, root)
                 or ["(no file found)"])
        checks.fail("metric %s is not in Prometheus; referenced by %s" % (name, ", ".join(where)))
    checks.ok("%d of %d referenced names exist in Prometheus" % (present, len(wanted)))
    for pattern in patterns:
        matching = sorted(n for n in names if re.fullmatch(pattern, n))
        if matching:
            checks.ok("pattern %s matches %d names (%s%s)" % (
                pattern, len(matching), ", ".join(matching[:3]), ", ..." if len(matching) > 3
                else ""))
        else:
            checks.fail("no metric in Prometheus matches the pattern %s" % pattern)


def check_rules(url, checks):
    """The alert rules (deploy/prometheus/local.yml's rule_files) are loaded and
    each evaluates without error; firing alerts are listed, not judged."""
    print("alert rules:")
    groups = get(url, "/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    if not rules:
        checks.fail("Prometheus has loaded no rules (rule_files of its config)")
        return
    # A rule is evaluated once per evaluation interval: wait for each to have been.
    bad = [r for r in rules if r.get("health") != "ok"]
    for r in bad:
        checks.fail("rule %s health=%s %s" % (r.get("name"), r.get("health"),
                                              r.get("lastError", "")))
    checks.ok("%d rules in %d groups, %d evaluated ok" % (len(rules), len(groups),
                                                          len(rules) - len(bad)))
    firing = sorted({a["labels"].get("alertname", "?") for a in get(url, "/api/v1/alerts")["alerts"]
                     if a.get("state") == "firing"})
    print("  info  alerts firing: %s" % (", ".join(firing) if firing else "none"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="Prometheus base URL")
    ap.add_argument("--targets", required=True, help="TSV of the processes the stack started")
    ap.add_argument("--since", type=float, required=True,
                    help="epoch seconds; every target must be scraped after it")
    ap.add_argument("--study", required=True, help="the study the test ran")
    ap.add_argument("--run-id", default="", help="the assessment's run id (for the log)")
    ap.add_argument("--metric-names", required=True,
                    help="script printing the referenced metric names (run from --root)")
    ap.add_argument("--root", default=".", help="the source tree")
    ap.add_argument("--polls", type=int, default=0,
                    help="how many times to poll the targets (default: 4 scrape intervals)")
    args = ap.parse_args()

    checks = Checks()
    polls = args.polls
    if polls <= 0:
        targets = get(args.url, "/api/v1/targets", {"state": "active"})["activeTargets"]
        interval = max([duration(t.get("scrapeInterval", "15s")) for t in targets] or [15])
        polls = int(4 * interval / 0.5) + 20
    check_targets(args.url, args.since, args.targets, polls, checks)
    check_series(args.url, args.study, checks)
    check_names(args.url, args.metric_names, args.root, checks)
    check_rules(args.url, checks)
    if checks.failures:
        print("%d check(s) failed:" % len(checks.failures))
        for f in checks.failures:
            print("  " + f)
        return 1
    print("all Prometheus checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
