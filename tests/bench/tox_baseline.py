#!/usr/bin/env python3
"""The Python baseline of fedrx_tox_bench: the tox panel's work for a list of
structures, in one process, with Debian's python3-rdkit and python3-torch.

Per structure: RDKit parse, the sites' standardisation as far as RDKit's
MolStandardize gives it (largest fragment, neutralised), Morgan fingerprint
(radius and bits as the study; no chirality; no consortium-key scrambling, as
in the demo, which has no key), then the study's network (Linear -> ReLU ->
Linear -> sigmoid) on the same float32 weights (fedrx's layout: W [in][out]
row-major, then b, layer after layer), and from the same calibration the
Mondrian conformal p-values of both labels per task (bin-conservative, as
serving/conformal.h), the 0.9 prediction set, and the domain score and
p-value of the trunk's embedding (ml/domain.h's DomainScore). Times the whole
list in batches, and single-structure calls; writes one JSON object.
"""
import argparse
import json
import math
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--smiles", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--calibration", required=True)
    p.add_argument("--input-dim", type=int, default=2048)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--tasks", type=int, default=12)
    p.add_argument("--radius", type=int, default=2)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--singles", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--confidence", type=float, default=0.9)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    import numpy as np
    import torch
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem
    from rdkit.Chem.MolStandardize import rdMolStandardize

    RDLogger.DisableLog("rdApp.*")
    torch.set_num_threads(a.threads)
    smiles = [line.rstrip("\n") for line in open(a.smiles)]

    flat = np.fromfile(a.weights, dtype=np.float32)
    d, h, t = a.input_dim, a.hidden, a.tasks
    expected = d * h + h + h * t + t
    if flat.size != expected:
        sys.exit(f"{a.weights}: {flat.size} floats, the network needs {expected}")
    w0 = torch.from_numpy(flat[: d * h].reshape(d, h).copy())
    b0 = torch.from_numpy(flat[d * h : d * h + h].copy())
    off = d * h + h
    w1 = torch.from_numpy(flat[off : off + h * t].reshape(h, t).copy())
    b1 = torch.from_numpy(flat[off + h * t :].copy())

    cal = json.load(open(a.calibration))
    pos = np.array(cal["pos"], dtype=np.float64)  # [tasks, bins]
    neg = np.array(cal["neg"], dtype=np.float64)
    bins = pos.shape[1]
    pos_at_or_below = np.cumsum(pos, axis=1)
    neg_at_or_above = np.cumsum(neg[:, ::-1], axis=1)[:, ::-1]
    n1 = pos.sum(axis=1)
    n0 = neg.sum(axis=1)
    mean = torch.tensor(cal["mean"], dtype=torch.float64)
    scale = torch.tensor(cal["scale"], dtype=torch.float64)
    dom = np.array(cal["domain"], dtype=np.float64)
    dom_bins = dom.size
    dom_at_or_above = np.cumsum(dom[::-1])[::-1]
    dom_rows = dom.sum()
    eps = 1 - a.confidence
    chooser = rdMolStandardize.LargestFragmentChooser()
    uncharger = rdMolStandardize.Uncharger()
    task_index = np.arange(t)[None, :]

    def featurise(s):
        mol = Chem.MolFromSmiles(s)
        if mol is None:
            return None
        mol = uncharger.uncharge(chooser.choose(mol))
        return list(AllChem.GetMorganFingerprintAsBitVect(mol, a.radius, nBits=d).GetOnBits())

    def panel(batch):
        """Probabilities, p-values, sets and domain flags of a batch."""
        rows = [featurise(s) for s in batch]
        ok = [i for i, r in enumerate(rows) if r is not None]
        x = torch.zeros((len(ok), d), dtype=torch.float32)
        for k, i in enumerate(ok):
            x[k, rows[i]] = 1.0
        with torch.no_grad():
            emb = torch.relu(torch.addmm(b0, x, w0))
            prob = torch.sigmoid(torch.addmm(b1, emb, w1))
        pr = prob.numpy().astype(np.float64)
        b = np.clip(np.floor(pr * bins), 0, bins - 1).astype(np.int64)
        p_pos = (pos_at_or_below[task_index, b] + 1) / (n1 + 1)
        p_neg = (neg_at_or_above[task_index, b] + 1) / (n0 + 1)
        sets = np.where(p_pos > eps, 1, 0) + np.where(p_neg > eps, 2, 0)
        z = (emb.to(torch.float64) - mean) / scale
        s = torch.sqrt((z * z).mean(dim=1)).numpy()
        u = s / (1 + s)
        ub = np.clip(np.floor(u * dom_bins), 0, dom_bins - 1).astype(np.int64)
        p_dom = (dom_at_or_above[ub] + 1) / (dom_rows + 1)
        in_domain = p_dom >= 0.01
        return ok, pr, p_pos, p_neg, sets, p_dom, in_domain

    # Warm-up (first-call costs in torch and RDKit), then the timed passes.
    panel(smiles[: min(10, len(smiles))])
    start = time.perf_counter()
    probabilities = [None] * len(smiles)
    for i in range(0, len(smiles), a.batch):
        ok, pr, *_ = panel(smiles[i : i + a.batch])
        for k, j in enumerate(ok):
            probabilities[i + j] = pr[k]
    seconds = time.perf_counter() - start
    lat = []
    for i in range(a.singles):
        s0 = time.perf_counter()
        panel([smiles[i % len(smiles)]])
        lat.append((time.perf_counter() - s0) * 1000)
    lat.sort()

    def pct(q):
        at = q * (len(lat) - 1)
        lo, hi = math.floor(at), math.ceil(at)
        return lat[lo] + (lat[hi] - lat[lo]) * (at - lo)

    flat_p = []
    for row in probabilities:
        flat_p.extend(row.tolist() if row is not None else [0.0] * t)
    out = {
        "compounds": len(smiles),
        "compounds_per_s": len(smiles) / seconds,
        "single_p50_ms": pct(0.5) if lat else None,
        "single_p99_ms": pct(0.99) if lat else None,
        "torch_threads": a.threads,
        "featurised": [0 if row is None else 1 for row in probabilities],
        "probabilities": flat_p,
    }
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"python: {len(smiles)} compounds at {out['compounds_per_s']:.1f}/s, single "
          f"p50 {out['single_p50_ms']:.2f} ms p99 {out['single_p99_ms']:.2f} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
