#!/usr/bin/env python3
"""Prints every metric name the Grafana dashboards and the alert rules use.

    metric_names.py [--patterns] [FILE_OR_DIR ...]

With no argument it reads the repository's deploy/grafana/dashboards/*.json
and k8s/base/prometheus/alerts.yml. A .json file is a Grafana dashboard (its
panels' target expressions and its query variables); a .yml/.yaml file holds
Prometheus rule groups (each rule's `expr`); a directory stands for the
.json/.yml/.yaml files in it.

Output: one name a line, sorted, each once, as written in the expressions
(a histogram's series keep their _bucket/_sum/_count suffix, the form the
/metrics text shows), so the stack's end-to-end test can look each one up in
what the running services expose. A selector by name pattern
({__name__=~"fedrx_[a-z]+_ready"}) names no single metric; with --patterns
those patterns are printed too, one a line as `~<regex>`.

Grafana variables are expanded: a custom variable used in a metric name
(fedrx_${service}_requests_total) yields one name per option of the
variable; Grafana's interval variables become durations.

Standard library only (the rules' YAML is read with PyYAML when it is
installed, otherwise with a reader of the block-style YAML these rule files
use).
"""

import argparse
import itertools
import json
import os
import re
import sys

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_INPUTS = [
    os.path.join(REPO, "deploy", "grafana", "dashboards"),
    os.path.join(REPO, "k8s", "base", "prometheus", "alerts.yml"),
]

# PromQL words that are never metric names where they appear as written:
# aggregations and functions (when followed by "("), and keywords.
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile",
}
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "days_in_month", "day_of_month", "day_of_week", "day_of_year", "deg",
    "delta", "deriv", "exp", "floor", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_sum", "holt_winters", "hour", "idelta", "increase",
    "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time",
    "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
}
KEYWORDS = {
    "and", "or", "unless", "atan2", "by", "without", "on", "ignoring", "group_left",
    "group_right", "bool", "offset", "inf", "nan",
}
# After these the parenthesised list holds label names.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]*\.)?[0-9]+(?:[eE][+-]?[0-9]+)?"
                    r"(?:ms|s|m|h|d|w|y|[0-9])*")
MATCHER = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)""")


def _string_end(expr, i):
    quote = expr[i]
    j = i + 1
    while j < len(expr):
        if expr[j] == "\\" and quote != "`":
            j += 2
            continue
        if expr[j] == quote:
            return j + 1
        j += 1
    raise ValueError("unterminated string in: " + expr)


def _unquote(literal):
    if literal[0] == "`":
        return literal[1:-1]
    return json.loads('"' + literal[1:-1].replace('\\"', '"').replace('"', '\\"') + '"')


def names_in_expr(expr):
    """Returns (names, patterns) of one PromQL expression, in order of use."""
    names, patterns = [], []
    i, n = 0, len(expr)
    skip_list = False  # the next "(" opens a label list (by/without/on/...)
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and expr[i] != "\n":
                i += 1
        elif c in "\"'`":
            i = _string_end(expr, i)
        elif c == "{":
            # Label matchers; only __name__ names a metric.
            j = i + 1
            while True:
                m = MATCHER.match(expr, j)
                if not m:
                    k = j
                    while k < n and expr[k] in " \t\n,":
                        k += 1
                    if k < n and expr[k] == "}":
                        i = k + 1
                        break
                    raise ValueError("cannot read the label matchers at: " + expr[i:i + 60])
                label, op, value = m.group(1), m.group(2), _unquote(m.group(3))
                if label == "__name__":
                    if op == "=":
                        names.append(value)
                    elif op == "=~":
                        patterns.append(value)
                j = m.end()
                while j < n and expr[j].isspace():
                    j += 1
                if j < n and expr[j] == ",":
                    j += 1
                elif j >= n or expr[j] != "}":
                    raise ValueError("expected ',' or '}' after a label matcher at: " + expr[j:j + 60])
        elif c == "[":
            i = expr.index("]", i) + 1  # a range or subquery duration
        elif c == "(" and skip_list:
            i = expr.index(")", i) + 1
            skip_list = False
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = NUMBER.match(expr, i)
            i = m.end() if m and m.end() > i else i + 1
        elif IDENT.match(expr, i):
            m = IDENT.match(expr, i)
            word = m.group(0)
            i = m.end()
            k = i
            while k < n and expr[k].isspace():
                k += 1
            nxt = expr[k] if k < n else ""
            lower = word.lower()
            if lower in LABEL_LIST_KEYWORDS:
                skip_list = True
            elif lower == "offset":
                # offset <duration>
                m2 = re.compile(r"\s*-?[0-9a-z]+").match(expr, i)
                if m2:
                    i = m2.end()
            elif lower in KEYWORDS:
                pass
            elif nxt == "(" and (word in FUNCTIONS or word in AGGREGATIONS):
                pass
            elif word in AGGREGATIONS and re.match(r"(by|without)\b", expr[k:]):
                pass
            elif prev_is_at(expr, m.start()):
                pass  # @ start() / @ end()
            else:
                names.append(word)
        else:
            i += 1
    return names, patterns


def prev_is_at(expr, start):
    j = start - 1
    while j >= 0 and expr[j].isspace():
        j -= 1
    return j >= 0 and expr[j] == "@"


# ---------------------------------------------------------------- dashboards

GRAFANA_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z0-9_]+)")
INTERVALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600",
             "__range_ms": "3600000", "__interval_ms": "60000"}


def _custom_options(var):
    values = [o.get("value") for o in var.get("options", []) if o.get("value") not in (None, "$__all")]
    if not values and isinstance(var.get("query"), str):
        values = [v.strip() for v in var["query"].split(",") if v.strip()]
    return [str(v) for v in values]


def expand_variables(expr, variables):
    """The expression with Grafana's variables replaced: every combination of
    the custom variables' options it uses; other variables become '.*'."""
    used = []
    for m in GRAFANA_VAR.finditer(expr):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in variables and variables[name] and name not in used:
            used.append(name)
    results = []
    for combo in itertools.product(*[variables[u] for u in used]) if used else [()]:
        chosen = dict(zip(used, combo))

        def sub(m):
            name = m.group(1) or m.group(2) or m.group(3)
            if name in chosen:
                return chosen[name]
            if name in INTERVALS:
                return INTERVALS[name]
            return ".*"
        results.append(GRAFANA_VAR.sub(sub, expr))
    return results


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def dashboard_exprs(dashboard):
    """Every PromQL expression of a dashboard (targets and query variables),
    with its variables expanded."""
    templating = dashboard.get("templating", {}).get("list", [])
    variables = {v["name"]: _custom_options(v) for v in templating if v.get("type") == "custom"}
    raw = []
    for panel in _walk(dashboard.get("panels", [])):
        for target in panel.get("targets", []) or []:
            if isinstance(target, dict) and target.get("expr"):
                raw.append(target["expr"])
    for var in templating:
        if var.get("type") != "query":
            continue
        q = var.get("query")
        if isinstance(q, dict):
            q = q.get("query", "")
        m = re.match(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$", q or "", re.S)
        if m:
            raw.append(m.group(1))
        else:
            m = re.match(r"\s*query_result\((.*)\)\s*$", q or "", re.S)
            if m:
                raw.append(m.group(1))
    out = []
    for e in raw:
        out.extend(expand_variables(e, variables))
    return out


# --------------------------------------------------------------------- rules

def _block_yaml_exprs(text):
    """`expr` values of a rule file in block-style YAML (plain, quoted, or
    literal/folded block scalars), for when PyYAML is not installed."""
    lines = text.splitlines()
    out = []
    i = 0
    key = re.compile(r"^(\s*)(?:-\s+)?expr:\s*(.*)$")
    while i < len(lines):
        m = key.match(lines[i])
        if not m:
            i += 1
            continue
        indent = len(m.group(1))
        value = m.group(2).rstrip()
        i += 1
        if value[:1] in ("|", ">"):
            block = []
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            margin = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            out.append("\n".join(b[margin:] for b in block))
        elif value[:1] == "'":
            out.append(value[1:-1].replace("''", "'"))
        elif value[:1] == '"':
            out.append(json.loads(value))
        else:
            parts = [re.sub(r"\s+#.*$", "", value)]
            while i < len(lines) and lines[i].strip() and \
                    len(lines[i]) - len(lines[i].lstrip()) > indent and ":" not in lines[i]:
                parts.append(lines[i].strip())
                i += 1
            out.append(" ".join(parts))
    return out


def rule_exprs(text):
    try:
        import yaml  # noqa: PLC0415 (optional)
    except ImportError:
        return _block_yaml_exprs(text)
    doc = yaml.safe_load(text) or {}
    return [str(r["expr"]) for g in doc.get("groups", []) for r in g.get("rules", []) if "expr" in r]


# ---------------------------------------------------------------------- main

def input_files(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            files.extend(os.path.join(p, f) for f in sorted(os.listdir(p))
                         if f.endswith((".json", ".yml", ".yaml")))
        else:
            files.append(p)
    return files


def collect(paths):
    names, patterns = set(), set()
    for path in input_files(paths):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        exprs = dashboard_exprs(json.loads(text)) if path.endswith(".json") else rule_exprs(text)
        for e in exprs:
            try:
                n, p = names_in_expr(e)
            except ValueError as err:
                raise SystemExit("%s: %s" % (path, err))
            names.update(n)
            patterns.update(p)
    return names, patterns


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patterns", action="store_true",
                        help="also print __name__ regex selectors, as ~<regex>")
    parser.add_argument("paths", nargs="*", help="dashboards (.json), rule files (.yml), dirs")
    args = parser.parse_args(argv)
    names, patterns = collect(args.paths or DEFAULT_INPUTS)
    for name in sorted(names):
        print(name)
    if args.patterns:
        for p in sorted(patterns):
            print("~" + p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
