#!/usr/bin/env python3
"""Checks the alert rules' conventions and their unit-test coverage (stdlib only).

    alerts_lint.py --rules k8s/base/prometheus/alerts.yml TESTS.yml...

Every alert in the rule file must
  - have a unique name starting with "Fedrx",
  - carry a severity label (critical or warning) and summary and description
    annotations,
and be tested by the promtool unit tests (deploy/prometheus/tests/*.yml) at
least once with series that fire it (a non-empty exp_alerts) and once with
series that must not (exp_alerts: []).

The files are read line by line in the block style they are written in (one
`- alert:` item per rule, `alertname:` and `exp_alerts:` in each test case),
so no YAML library is needed. Exit status 0 when all hold, 1 otherwise.
"""

import argparse
import re
import sys

SEVERITIES = {"critical", "warning"}


def alerts_in(text):
    """{name: block text} of every `- alert:` item."""
    out = {}
    matches = list(re.finditer(r"^(\s*)- alert:\s*(\S+)\s*$", text, re.M))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        group = re.compile(r"^\s*- name:", re.M).search(text, m.end(), end)
        block = text[m.end():group.start() if group else end]
        if m.group(2) in out:
            out[m.group(2) + " (again)"] = block
        else:
            out[m.group(2)] = block
    return out


def coverage(text):
    """{alertname: (fired, not_fired)} over the test cases of one test file."""
    out = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(?:- )?alertname:\s*(\S+)\s*$", line)
        if not m:
            continue
        for follow in lines[i + 1:i + 4]:
            e = re.match(r"^\s*exp_alerts:\s*(.*?)\s*$", follow)
            if e:
                fired, not_fired = out.get(m.group(1), (False, False))
                if e.group(1) == "[]":
                    not_fired = True
                elif e.group(1) == "":
                    fired = True
                out[m.group(1)] = (fired, not_fired)
                break
    return out


def main():
    ap = argparse.ArgumentParser(description="Checks alert rule conventions and test coverage.")
    ap.add_argument("--rules", required=True)
    ap.add_argument("tests", nargs="+")
    args = ap.parse_args()
    with open(args.rules, encoding="utf-8") as f:
        alerts = alerts_in(f.read())
    problems = []
    if not alerts:
        problems.append("%s holds no alert" % args.rules)
    for name, block in alerts.items():
        if name.endswith(" (again)"):
            problems.append("%s: the alert name is used twice" % name[:-8])
            continue
        if not name.startswith("Fedrx"):
            problems.append("%s: alert names start with Fedrx" % name)
        sev = re.search(r"^\s*severity:\s*(\S+)\s*$", block, re.M)
        if not sev or sev.group(1) not in SEVERITIES:
            problems.append("%s: needs a severity label, one of %s" % (name, sorted(SEVERITIES)))
        for annotation in ("summary", "description"):
            if not re.search(r"^\s*%s:\s*\S" % annotation, block, re.M):
                problems.append("%s: needs a %s annotation" % (name, annotation))
    covered = {}
    for path in args.tests:
        with open(path, encoding="utf-8") as f:
            for name, (fired, not_fired) in coverage(f.read()).items():
                was = covered.get(name, (False, False))
                covered[name] = (was[0] or fired, was[1] or not_fired)
    for name in alerts:
        if name.endswith(" (again)"):
            continue
        fired, not_fired = covered.get(name, (False, False))
        if not fired:
            problems.append("%s: no unit test fires it (a non-empty exp_alerts)" % name)
        if not not_fired:
            problems.append("%s: no unit test shows it silent (exp_alerts: [])" % name)
    for name in sorted(set(covered) - set(alerts)):
        problems.append("%s: tested but not in %s" % (name, args.rules))
    for p in problems:
        print("FAIL", p)
    print("%d alerts, %d problems" % (len(alerts), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
