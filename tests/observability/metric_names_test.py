#!/usr/bin/env python3
"""Unit tests of metric_names.py (stdlib unittest): which identifiers of a
PromQL expression are metric names, how Grafana variables expand, how rule
files are read, and what the command prints for a small sample."""

import io
import json
import os
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import metric_names as mn  # noqa: E402


def names(expr):
    return mn.names_in_expr(expr)[0]


class PromqlNames(unittest.TestCase):
    # Functions, aggregations and their label lists are not metric names.
    def test_functions_aggregations_and_label_lists(self):
        self.assertEqual(
            names('histogram_quantile(0.9, sum by (le, job) (rate(fedrx_x_seconds_bucket[5m])))'),
            ["fedrx_x_seconds_bucket"])
        self.assertEqual(names("sum without (instance) (rate(a_total[5m]))"), ["a_total"])
        self.assertEqual(names("sum(rate(a_total[5m])) by (job)"), ["a_total"])
        self.assertEqual(names("topk(10, count_values(\"v\", b))"), ["b"])

    # Binary operators, vector matching and their label lists.
    def test_vector_matching(self):
        self.assertEqual(
            names("a / on (instance) group_left (version, job) b and ignoring (x) c unless d or e"),
            ["a", "b", "c", "d", "e"])
        self.assertEqual(names("sum(x) - (sum(y) or vector(0)) > bool 1"), ["x", "y"])
        self.assertEqual(names("a and on () sum(b) > 0"), ["a", "b"])

    # Label names and values inside braces and strings are not metric names,
    # except an exact __name__; a __name__ regex is a pattern.
    def test_matchers_and_strings(self):
        self.assertEqual(names('up{job="gateway", code=~"internal|ok"} == 0'), ["up"])
        self.assertEqual(names('label_replace(m, "dst", "$1", "src", "(.*)")'), ["m"])
        self.assertEqual(mn.names_in_expr('{__name__="exact_total", job!=""}'), (["exact_total"], []))
        self.assertEqual(mn.names_in_expr('rate({__name__=~"fedrx_[a-z]+_requests_total"}[5m])'),
                         ([], ["fedrx_[a-z]+_requests_total"]))

    # Durations, offsets, @ modifiers, subqueries, numbers and comments.
    def test_durations_numbers_and_modifiers(self):
        self.assertEqual(names("max_over_time(rate(a[5m])[1h:1m]) offset 1h"), ["a"])
        self.assertEqual(names("b @ end() > 4 * 1024 * 1e3 + 0x1f"), ["b"])
        self.assertEqual(names("time() - c # not_a_metric here\n + d"), ["c", "d"])
        self.assertEqual(names("-e + inf"), ["e"])

    # A name that is also a function's name is a metric when not called.
    def test_metric_named_like_a_keyword_prefix(self):
        self.assertEqual(names("rate_limited_total + sum_of_things + by_site"),
                         ["rate_limited_total", "sum_of_things", "by_site"])

    def test_unreadable_matchers_are_an_error(self):
        with self.assertRaises(ValueError):
            mn.names_in_expr('a{job="x" job="y"}')


class Dashboards(unittest.TestCase):
    DASHBOARD = {
        "templating": {"list": [
            {"name": "DS_PROMETHEUS", "type": "datasource", "query": "prometheus"},
            {"name": "service", "type": "custom", "query": "tox,trial",
             "options": [{"text": "All", "value": "$__all"}, {"text": "tox", "value": "tox"},
                         {"text": "trial", "value": "trial"}]},
            {"name": "instance", "type": "query",
             "query": {"query": "label_values(fedrx_gateway_up, instance)"}},
        ]},
        "panels": [
            {"type": "row", "panels": [
                {"type": "timeseries", "targets": [
                    {"refId": "A", "expr": "sum(rate(fedrx_${service}_requests_total[$__rate_interval]))"}]}]},
            {"type": "stat", "targets": [
                {"refId": "A", "expr": 'max(fedrx_coordinator_model_version{instance=~"$instance"})'},
                {"refId": "B", "expr": ""}]},
        ],
    }

    # Custom variables expand to every option; nested panels and query
    # variables are read; other variables become harmless text.
    def test_exprs_and_expansion(self):
        exprs = mn.dashboard_exprs(self.DASHBOARD)
        self.assertEqual(exprs, [
            "sum(rate(fedrx_tox_requests_total[5m]))",
            "sum(rate(fedrx_trial_requests_total[5m]))",
            'max(fedrx_coordinator_model_version{instance=~".*"})',
            "fedrx_gateway_up",
        ])


RULES = """groups:
  - name: g
    rules:
      - alert: A
        expr: up{job="x"} == 0
        for: 2m
      - alert: B
        expr: |
          sum by (job) (rate(b_total[5m]))
            > 1
        labels:
          severity: warning
      - alert: C
        expr: 'c_bytes > 2'
      - record: job:d:sum
        expr: "sum(d)"
"""


class Rules(unittest.TestCase):
    # The fallback reader gives the same expressions as a YAML parser.
    def test_block_reader(self):
        self.assertEqual(mn._block_yaml_exprs(RULES), [
            'up{job="x"} == 0', "sum by (job) (rate(b_total[5m]))\n  > 1", "c_bytes > 2", "sum(d)"])

    def test_block_reader_agrees_with_pyyaml_on_the_alert_rules(self):
        try:
            import yaml  # noqa: F401
        except ImportError:
            self.skipTest("PyYAML is not installed")
        path = os.path.join(HERE, "..", "..", "k8s", "base", "prometheus", "alerts.yml")
        with open(path) as f:
            text = f.read()
        self.assertEqual([e.strip() for e in mn._block_yaml_exprs(text)],
                         [e.strip() for e in mn.rule_exprs(text)])


class Command(unittest.TestCase):
    # The command prints each name once, sorted, from dashboards and rules;
    # --patterns adds the __name__ regexes.
    def test_output(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "d.json"), "w") as f:
                json.dump(Dashboards.DASHBOARD, f)
            with open(os.path.join(tmp, "alerts.yml"), "w") as f:
                f.write(RULES + '      - alert: E\n        expr: \'{__name__=~"fedrx_.+_up"} == 0\'\n')
            out = io.StringIO()
            with redirect_stdout(out):
                mn.main([tmp])
            self.assertEqual(out.getvalue().split("\n"), [
                "b_total", "c_bytes", "d", "fedrx_coordinator_model_version", "fedrx_gateway_up",
                "fedrx_tox_requests_total", "fedrx_trial_requests_total", "up", ""])
            proc = subprocess.run([sys.executable, os.path.join(HERE, "metric_names.py"),
                                   "--patterns", os.path.join(tmp, "alerts.yml")],
                                  capture_output=True, text=True, check=True)
            self.assertEqual(proc.stdout.split(), ["b_total", "c_bytes", "d", "up", "~fedrx_.+_up"])

    # The repository's own dashboards and rules are readable and name only
    # fedrx_*, redis_* and up.
    def test_repository_files(self):
        out = io.StringIO()
        with redirect_stdout(out):
            mn.main([])
        got = out.getvalue().split()
        self.assertGreater(len(got), 50)
        for name in got:
            self.assertRegex(name, r"^(fedrx_[a-z0-9_]+|redis_[a-z0-9_]+|up)$")


if __name__ == "__main__":
    unittest.main()
