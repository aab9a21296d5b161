#!/usr/bin/env python3
"""List-then-average FedAvg, the way common Python FL servers aggregate.

The server keeps every client's update in a list until the round closes, then
multiplies each by its sample count (one weighted copy per update) and sums
the copies. This is the baseline fedrx_aggregation_bench compares its
streaming FedAvg with. Updates are the same as the C++ bench generates:
site s sends a vector filled with 1 + 0.1 * (s % 10), weighted by 100 + 7 s
samples.

Prints one JSON object: sites, params, the aggregation time in seconds (the
weighting and summing, after all updates are held), the time to receive the
updates (allocate and fill them), the process's peak RSS in bytes
(resource.getrusage ru_maxrss) and the aggregate's first value.

Usage: aggregation_baseline.py --sites N --params P
"""
import argparse
import functools
import json
import resource
import time

import numpy as np


def site_value(s):
    return 1.0 + 0.1 * (s % 10)


def site_samples(s):
    return 100 + 7 * s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, required=True)
    parser.add_argument("--params", type=int, required=True)
    args = parser.parse_args()

    started = time.perf_counter()
    results = []  # (update, num_samples), as a server collects them during a round
    for s in range(args.sites):
        update = np.empty(args.params, dtype=np.float32)
        update.fill(site_value(s))
        results.append((update, site_samples(s)))
    received = time.perf_counter() - started

    started = time.perf_counter()
    total = sum(n for _, n in results)
    weighted = [update * n for update, n in results]
    aggregate = functools.reduce(np.add, weighted) / total
    seconds = time.perf_counter() - started

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "sites": args.sites,
        "params": args.params,
        "seconds": seconds,
        "receive_seconds": received,
        "peak_rss_bytes": peak_kib * 1024,
        "value0": float(aggregate[0]),
    }))


if __name__ == "__main__":
    main()
