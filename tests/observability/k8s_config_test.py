#!/usr/bin/env python3
"""Tests the Kubernetes Prometheus config k8s/base/prometheus/prometheus.yml.

    k8s_config_test.py --promtool PATH --config prometheus.yml --rules alerts.yml

Debian's Prometheus (the one CI installs) is built without Kubernetes service
discovery, so `promtool check config` refuses `kubernetes_sd_configs` there.
This test therefore
  1. checks the discovery block as written: role pod, the pod's own
     namespace;
  2. replaces that block by static targets that carry the labels Kubernetes
     discovery gives pods (__meta_kubernetes_*), for a handful of pods of the
     platform, and has promtool check the whole config (relabelling, rule
     file) and run its relabelling (`promtool check service-discovery`);
  3. asserts which pods become targets, with which job, address, path,
     namespace and pod labels: annotated running pods only, one target per
     pod at the annotated port, the job from the app label.
Exit status 0 when all hold, 1 otherwise (stdlib only).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# name: (addresses (one per declared container port), meta labels)
PODS = {
    # A StatefulSet replica: bus port and metrics port declared.
    "coordinator-0": (["10.1.0.5:5570", "10.1.0.5:9464"], {
        "app": "coordinator", "scrape": "true", "port": "9464", "phase": "Running"}),
    # Labelled the recommended way only (app.kubernetes.io/name).
    "gateway-7d9f": (["10.1.0.6:5560", "10.1.0.6:9465"], {
        "name": "gateway", "scrape": "true", "port": "9465", "path": "/metrics",
        "phase": "Running"}),
    # Redis with its exporter sidecar: the annotation names the exporter.
    "redis-0": (["10.1.0.7:6379", "10.1.0.7:9121"], {
        "app": "redis", "scrape": "true", "port": "9121", "phase": "Running"}),
    # Both labels: `app` wins.
    "tox-5b6c": (["10.1.0.8:9484"], {
        "app": "tox", "name": "fedrx-tox", "scrape": "true", "port": "9484",
        "path": "/custom/metrics", "phase": "Running"}),
    # Not annotated, annotated false, not running: not scraped.
    "trial-1a2b": (["10.1.0.9:9483"], {"app": "trial", "phase": "Running"}),
    "report-3c4d": (["10.1.0.10:9488"], {
        "app": "report", "scrape": "false", "port": "9488", "phase": "Running"}),
    "clinical-5e6f": (["10.1.0.11:9485"], {
        "app": "clinical", "scrape": "true", "port": "9485", "phase": "Pending"}),
}
EXPECTED = {
    ("coordinator", "10.1.0.5:9464", "/metrics", "coordinator-0"),
    ("gateway", "10.1.0.6:9465", "/metrics", "gateway-7d9f"),
    ("redis", "10.1.0.7:9121", "/metrics", "redis-0"),
    ("tox", "10.1.0.8:9484", "/custom/metrics", "tox-5b6c"),
}
META = {
    "app": "__meta_kubernetes_pod_label_app",
    "name": "__meta_kubernetes_pod_label_app_kubernetes_io_name",
    "scrape": "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
    "port": "__meta_kubernetes_pod_annotation_prometheus_io_port",
    "path": "__meta_kubernetes_pod_annotation_prometheus_io_path",
    "phase": "__meta_kubernetes_pod_phase",
}


def static_pods(indent):
    lines = [indent + "static_configs:"]
    for pod, (addresses, meta) in PODS.items():
        lines.append(indent + "  - targets: %s" % json.dumps(addresses))
        lines.append(indent + "    labels:")
        labels = {META[k]: v for k, v in meta.items()}
        labels["__meta_kubernetes_namespace"] = "fedrx"
        labels["__meta_kubernetes_pod_name"] = pod
        for k, v in sorted(labels.items()):
            lines.append(indent + "      %s: %s" % (k, json.dumps(v)))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("--config", required=True)
    ap.add_argument("--rules", required=True)
    args = ap.parse_args()
    failures = []
    text = open(args.config, encoding="utf-8").read()

    block = re.search(r"^( +)kubernetes_sd_configs:\n((?:\1 .*\n)+)", text, re.M)
    if not block:
        print("FAIL %s has no kubernetes_sd_configs block" % args.config)
        return 1
    body = block.group(2)
    if not re.search(r"^\s*- role: pod\s*$", body, re.M):
        failures.append("kubernetes_sd_configs must discover role: pod")
    if not re.search(r"^\s*own_namespace: true\s*$", body, re.M):
        failures.append("kubernetes_sd_configs must be limited to its own namespace")
    if not re.search(r"^rule_files:\n\s+- alerts\.yml\s*$", text, re.M):
        failures.append("rule_files must be [alerts.yml] (the ConfigMap's other file)")

    stub = text[:block.start()] + static_pods(block.group(1)) + text[block.end():]
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(stub)
        shutil.copy(args.rules, os.path.join(tmp, "alerts.yml"))
        check = subprocess.run([args.promtool, "check", "config", config],
                               capture_output=True, text=True)
        if check.returncode != 0:
            failures.append("promtool check config (discovery replaced by static pods):\n" +
                            check.stdout + check.stderr)
        sd = subprocess.run([args.promtool, "check", "service-discovery", "--timeout=2s", config,
                             "fedrx-pods"], capture_output=True, text=True)
        if sd.returncode != 0:
            failures.append("promtool check service-discovery:\n" + sd.stdout + sd.stderr)
            got = set()
        else:
            got = set()
            for target in json.loads(sd.stdout):
                labels = target.get("labels") or {}
                if not labels:
                    continue  # dropped by the relabelling
                if labels.get("namespace") != "fedrx":
                    failures.append("target %s lacks namespace=fedrx" % labels)
                got.add((labels.get("job"), labels.get("__address__"),
                         labels.get("__metrics_path__"), labels.get("pod")))
    for missing in sorted(EXPECTED - got):
        failures.append("expected target (job, address, path, pod) %s is missing" % (missing,))
    for extra in sorted(got - EXPECTED, key=str):
        failures.append("unexpected target (job, address, path, pod) %s" % (extra,))
    for f in failures:
        print("FAIL", f)
    print("%d targets from %d pods, %d problems" % (len(got), len(PODS), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
