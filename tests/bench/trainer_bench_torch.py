#!/usr/bin/python3
"""PyTorch baseline for fedrx_trainer_bench.

Trains the same network as the C++ bench (input -> hidden ReLU dropout ->
tasks; 2048 -> 512 -> 12 by default) on the dataset file the bench writes, with
the same batch size, Adam and masked binary cross-entropy (mean over the
labelled entries of a batch), and prints one JSON line with its throughput.

The input is fed as a dense float tensor of width `dim` to nn.Linear, as
PyTorch users do; PyTorch has no sparse first layer of its own that is faster
at these sizes. Run it with Debian's /usr/bin/python3, OPENBLAS_NUM_THREADS=1,
and --threads 2 (torch.set_num_threads), as the bench does.

Dataset file (text): a header line "fedrx-trainer-bench 1 ROWS DIM TASKS", then
one line per row: TASKS characters ('0', '1', or '-' for a missing label),
then the row's set bit indices, space separated.
"""
import argparse
import json
import sys
import time

import torch
from torch import nn


def load(path):
    with open(path) as f:
        header = f.readline().split()
        if header[:2] != ["fedrx-trainer-bench", "1"]:
            sys.exit(f"{path}: not a fedrx-trainer-bench v1 file")
        rows, dim, tasks = (int(v) for v in header[2:5])
        row_idx, col_idx, labels = [], [], []
        for r in range(rows):
            parts = f.readline().split()
            labels.append(parts[0])
            for j in parts[1:]:
                row_idx.append(r)
                col_idx.append(int(j))
    x = torch.zeros(rows, dim)
    x[torch.tensor(row_idx, dtype=torch.long), torch.tensor(col_idx, dtype=torch.long)] = 1.0
    y = torch.zeros(rows, tasks)
    mask = torch.zeros(rows, tasks)
    for r, s in enumerate(labels):
        for t, c in enumerate(s):
            if c != "-":
                y[r, t] = float(c == "1")
                mask[r, t] = 1.0
    return x, y, mask


def blas_library():
    """The BLAS shared library this process loaded (Debian's python3-torch
    uses whichever libblas.so.3 the alternatives system or LD_LIBRARY_PATH
    gives it: the reference BLAS unless OpenBLAS is there)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "libblas" in path or "openblas" in path or "libmkl" in path:
                    return path
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--warmup-epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y, mask = load(args.data)
    n, dim = x.shape
    tasks = y.shape[1]
    model = nn.Sequential(nn.Linear(dim, args.hidden), nn.ReLU(), nn.Dropout(args.dropout),
                          nn.Linear(args.hidden, tasks))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def epoch():
        perm = torch.randperm(n)
        loss_sum, labelled = 0.0, 0.0
        for first in range(0, n, args.batch_size):
            idx = perm[first:first + args.batch_size]
            xb, yb, mb = x[idx], y[idx], mask[idx]
            count = mb.sum()
            if count.item() == 0:
                continue
            loss = (bce(model(xb), yb) * mb).sum() / count
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * count.item()
            labelled += count.item()
        return loss_sum / max(labelled, 1.0)

    for _ in range(args.warmup_epochs):
        epoch()
    losses = []
    start = time.perf_counter()
    for _ in range(args.epochs):
        losses.append(epoch())
    seconds = time.perf_counter() - start
    print(json.dumps({
        "samples_per_s": n * args.epochs / seconds,
        "seconds": seconds,
        "epochs": args.epochs,
        "rows": n,
        "epoch_loss": losses,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_library(),
    }))


if __name__ == "__main__":
    main()
