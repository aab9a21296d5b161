#!/usr/bin/env python3
"""Lints the Grafana dashboards under deploy/grafana/dashboards/ (stdlib only).

    dashboards_lint.py --promtool PATH DASHBOARD.json...

Checks, naming the file and panel of each problem:
  - the file is a JSON object with a uid and title unique among the files and
    a schemaVersion of at least 36;
  - it declares the data source variable DS_PROMETHEUS (type datasource,
    Prometheus) and every panel and target queries through it;
  - panel ids are unique in the dashboard, every panel has a known type and a
    gridPos inside the 24-column grid;
  - every target has an expression and a refId unique in its panel;
  - every variable an expression uses is defined (or one of Grafana's);
  - every expression, with its variables expanded (metric_names.py's
    expansion), is valid PromQL: all are written as recording rules into a
    temporary rule file that `promtool check rules` must accept.
Exit status 0 when all hold, 1 otherwise.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metric_names  # noqa: E402

PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "table", "bargauge", "text", "heatmap"}
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
BUILTIN_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                "__range_ms", "__all", "__name", "__dashboard", "__from", "__to"}


def panels_of(panels):
    for p in panels:
        yield p
        yield from panels_of(p.get("panels", []) or [])


def lint(path, dashboard, seen_uids, problems):
    def problem(where, message):
        problems.append("%s: %s: %s" % (os.path.basename(path), where, message))

    if not isinstance(dashboard, dict):
        problem("top level", "not a JSON object")
        return []
    uid, title = dashboard.get("uid"), dashboard.get("title")
    if not uid or not title:
        problem("top level", "uid and title are required")
    elif uid in seen_uids:
        problem("top level", "uid %s is also %s's" % (uid, seen_uids[uid]))
    else:
        seen_uids[uid] = os.path.basename(path)
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        problem("top level", "schemaVersion must be >= 36, is %r" % dashboard.get("schemaVersion"))

    templating = dashboard.get("templating", {}).get("list", [])
    names = {v.get("name") for v in templating}
    ds = [v for v in templating if v.get("name") == "DS_PROMETHEUS"]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        problem("templating", "needs the variable DS_PROMETHEUS of type datasource, query prometheus")

    ids = {}
    for p in panels_of(dashboard.get("panels", [])):
        where = "panel %r (id %s)" % (p.get("title"), p.get("id"))
        pid = p.get("id")
        if not isinstance(pid, int):
            problem(where, "no integer id")
        elif pid in ids:
            problem(where, "id %d is also panel %r's" % (pid, ids[pid]))
        else:
            ids[pid] = p.get("title")
        if p.get("type") not in PANEL_TYPES:
            problem(where, "unknown panel type %r" % p.get("type"))
        pos = p.get("gridPos") or {}
        if not all(isinstance(pos.get(k), int) for k in ("x", "y", "w", "h")):
            problem(where, "gridPos needs integer x, y, w, h")
        elif pos["x"] < 0 or pos["w"] < 1 or pos["x"] + pos["w"] > 24 or pos["h"] < 1:
            problem(where, "gridPos %s is outside the 24-column grid" % pos)
        if p.get("type") in ("row", "text"):
            continue
        if p.get("datasource") != DATASOURCE:
            problem(where, "datasource must be %s" % json.dumps(DATASOURCE))
        targets = p.get("targets") or []
        if not targets:
            problem(where, "no targets")
        refs = set()
        for t in targets:
            if not (t.get("expr") or "").strip():
                problem(where, "target %s has no expr" % t.get("refId"))
            if not t.get("refId") or t.get("refId") in refs:
                problem(where, "target refId %r missing or repeated" % t.get("refId"))
            refs.add(t.get("refId"))
            if t.get("datasource", DATASOURCE) != DATASOURCE:
                problem(where, "target %s datasource must be %s" % (t.get("refId"), json.dumps(DATASOURCE)))
            for m in metric_names.GRAFANA_VAR.finditer(t.get("expr") or ""):
                var = m.group(1) or m.group(2) or m.group(3)
                if var not in names and var not in BUILTIN_VARS:
                    problem(where, "expr uses the undefined variable $%s" % var)
        repeat = p.get("repeat")
        if repeat and repeat not in names:
            problem(where, "repeats over the undefined variable $%s" % repeat)
    return metric_names.dashboard_exprs(dashboard)


def check_promql(promtool, exprs, problems):
    """All (file, expr) pairs through `promtool check rules` as recording rules."""
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "dashboards.rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n  - name: dashboard-expressions\n    rules:\n")
            for i, (path, expr) in enumerate(exprs):
                f.write("      # %s\n" % os.path.basename(path))
                f.write("      - record: dashboard:expr_%d\n" % i)
                f.write("        expr: %s\n" % json.dumps(expr))
        proc = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
        if proc.returncode != 0:
            out = proc.stdout + proc.stderr
            for m in re.finditer(r"dashboard:expr_(\d+)", out):
                path, expr = exprs[int(m.group(1))]
                problems.append("%s: invalid PromQL: %s" % (os.path.basename(path), expr))
            problems.append("promtool check rules on the dashboards' expressions:\n" + out.strip())
        return len(exprs)


def main():
    ap = argparse.ArgumentParser(description="Lints Grafana dashboards.")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("dashboards", nargs="+")
    args = ap.parse_args()
    problems, seen_uids, exprs = [], {}, []
    for path in args.dashboards:
        try:
            with open(path, encoding="utf-8") as f:
                dashboard = json.load(f)
        except (OSError, ValueError) as e:
            problems.append("%s: not valid JSON: %s" % (path, e))
            continue
        exprs.extend((path, e) for e in lint(path, dashboard, seen_uids, problems))
    count = check_promql(args.promtool, exprs, problems) if exprs else 0
    for p in problems:
        print("FAIL", p)
    print("%d dashboards, %d expressions, %d problems" % (len(args.dashboards), count, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
