#!/usr/bin/env python3
"""Compound preparation on Debian's python3-rdkit, the baseline of fedrx_ingest_bench.

The same steps, in the same order, as fedrx's PrepareCompounds with the
InChIKey off (services/ml/chem.cc, services/ingest/compounds.cc), written the
way a Python pipeline would: read the CSV (csv module), parse without
sanitising, sanitise, remove explicit hydrogens, keep the largest fragment
(rdMolStandardize.LargestFragmentChooser) when there is more than one,
neutralise (rdMolStandardize.Uncharger) when an atom is charged and keep the
neutral form only if its SMILES reads back, canonical SMILES, Bemis-Murcko
scaffold (Chem.MurckoDecompose, as MurckoScaffold.GetScaffoldForMol, without
its SSSR pass: fedrx does not perceive rings there either), Morgan radius 2
2048-bit vector to its on-bit list, the keyed permutation of the bits
(SplitMix64 Fisher-Yates keyed with HMAC-SHA256(secret, "fedrx-scramble1"),
as ml::BitScrambler) and the keyed fold of the scaffold (HMAC-SHA256(secret,
"fedrx-fold1\\0" + group), first 8 bytes big-endian, mod 5, as
ConsortiumKey::Fold). --always-standardise runs both standardisers on every
molecule, as a straightforward script would (fedrx skips them when they
cannot change anything).

Both processes: multiprocessing.Pool(N) over chunks of SMILES (workers
forked once, outside the timing; sending SMILES and receiving results is
timed, as it is part of the work). One process: a plain loop.

Prints JSON lines {"bench", "metric", "value", "unit", "baseline", "ratio"}:
records_per_s_<N>proc for each --processes, the median over --repetitions
after one warm-up run, timing reading and preparing every file. With --serve
it warms every pool, prints "ready", then for each line N read from stdin
runs once with N processes and prints the wall-clock seconds and this
process's CPU seconds (time.process_time; with N = 1 all of the work, so a
figure that other load on the machine barely moves): fedrx_ingest_bench drives
it so that its own runs and these alternate under the same machine load.
--stages prints
instead microseconds per record of each step, one process, as
fedrx_ingest_bench --stages does for fedrx. --dump PATH
writes the single-process results (file, record, SMILES, scaffold, fold,
scrambled bits) as TSV, for the C++ bench to compare with its own.

Usage: ingest_baseline.py --secret S [--processes 1,2] [--repetitions 5]
                          [--dump PATH] [--always-standardise] [--serve]
                          [--stages] FILE...
"""
import argparse
import csv
import hashlib
import hmac
import json
import multiprocessing
import statistics
import struct
import sys
import time

from rdkit import Chem, RDLogger
from rdkit.Chem import AllChem
from rdkit.Chem.MolStandardize import rdMolStandardize

RDLogger.DisableLog("rdApp.*")  # fedrx captures RDKit's logs; never print structures

MASK64 = (1 << 64) - 1
FOLDS = 5
BITS = 2048
RADIUS = 2

# Per process, set by init_worker (or directly for the single-process run).
_secret = b""
_perm = None
_always = False
_uncharger = None
_chooser = None
_params = None


def splitmix64_permutation(key, dim):
    """ml::BitScrambler's permutation of [0, dim), exactly."""
    perm = list(range(dim))
    state = key
    for i in range(dim - 1, 0, -1):
        n = i + 1
        reject_below = (1 << 64) % n
        while True:
            state = (state + 0x9E3779B97F4A7C15) & MASK64
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            x = z ^ (z >> 31)
            if x >= reject_below:
                break
        j = x % n
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def init_worker(secret, always):
    global _secret, _perm, _always, _uncharger, _chooser, _params
    _secret = secret
    mac = hmac.new(secret, b"fedrx-scramble1", hashlib.sha256).digest()
    _perm = splitmix64_permutation(struct.unpack("<Q", mac[:8])[0], BITS)
    _always = always
    _uncharger = rdMolStandardize.Uncharger()
    _chooser = rdMolStandardize.LargestFragmentChooser()
    _params = Chem.SmilesParserParams()
    _params.sanitize = False
    _params.removeHs = False
    _params.parseName = False
    _params.allowCXSMILES = False


def prepare(smiles):
    """(canonical SMILES, scaffold, fold, scrambled bits), or None if rejected."""
    try:
        mol = Chem.MolFromSmiles(smiles, _params)
        if mol is None or mol.GetNumAtoms() == 0:
            return None
        Chem.SanitizeMol(mol)
        mol = Chem.RemoveHs(mol)
        if _always or len(Chem.GetMolFrags(mol)) > 1:
            mol = _chooser.choose(mol)
        if _always or any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
            uncharged = _uncharger.uncharge(mol)
            if Chem.MolFromSmiles(Chem.MolToSmiles(uncharged)) is not None:
                mol = uncharged
        canonical = Chem.MolToSmiles(mol)
        fp = AllChem.GetMorganFingerprintAsBitVect(mol, RADIUS, nBits=BITS)
        bits = sorted(_perm[b] for b in fp.GetOnBits())
        scaffold = ""
        core = Chem.MurckoDecompose(mol)
        if core is not None and core.GetNumAtoms() > 0:
            core.UpdatePropertyCache(strict=False)
            scaffold = Chem.MolToSmiles(core, isomericSmiles=False)
        group = (scaffold or canonical).encode()
        mac = hmac.new(_secret, b"fedrx-fold1\0" + group, hashlib.sha256).digest()
        fold = struct.unpack(">Q", mac[:8])[0] % FOLDS
        return canonical, scaffold, fold, bits
    except Exception:  # RDKit raises for unsanitisable input: a rejected record
        return None


def profile_stages(paths):
    """Microseconds per record of each step of prepare(), one process."""
    smiles = [s for p in paths for s in read_smiles(p)]
    names = ["parse", "sanitize_removehs", "standardise", "canonical_smiles", "morgan",
             "scaffold", "free", "scramble_fold", "prepare"]
    total = dict.fromkeys(names, 0.0)
    clock = time.perf_counter
    for _ in range(2):  # the first is a warm-up
        total = dict.fromkeys(names, 0.0)
        for smi in smiles:
            t0 = clock()
            mol = Chem.MolFromSmiles(smi, _params)
            t1 = clock()
            Chem.SanitizeMol(mol)
            mol = Chem.RemoveHs(mol)
            t2 = clock()
            if len(Chem.GetMolFrags(mol)) > 1:
                mol = _chooser.choose(mol)
            if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
                uncharged = _uncharger.uncharge(mol)
                if Chem.MolFromSmiles(Chem.MolToSmiles(uncharged)) is not None:
                    mol = uncharged
            t3 = clock()
            canonical = Chem.MolToSmiles(mol)
            t4 = clock()
            on = list(AllChem.GetMorganFingerprintAsBitVect(mol, RADIUS, nBits=BITS).GetOnBits())
            t5 = clock()
            scaffold = ""
            core = Chem.MurckoDecompose(mol)
            if core.GetNumAtoms() > 0:
                core.UpdatePropertyCache(strict=False)
                scaffold = Chem.MolToSmiles(core, isomericSmiles=False)
            t6 = clock()
            del mol, core
            t7 = clock()
            sorted(_perm[b] for b in on)
            mac = hmac.new(_secret, b"fedrx-fold1\0" + (scaffold or canonical).encode(),
                           hashlib.sha256).digest()
            struct.unpack(">Q", mac[:8])[0] % FOLDS
            t8 = clock()
            prepare(smi)
            t9 = clock()
            for name, a, b in zip(names, (t0, t1, t2, t3, t4, t5, t6, t7, t8),
                                  (t1, t2, t3, t4, t5, t6, t7, t8, t9)):
                total[name] += b - a
    for name in names:
        print(json.dumps({"bench": "ingest_python_stages", "metric": "us_per_record_" + name,
                          "value": 1e6 * total[name] / len(smiles), "unit": "us",
                          "baseline": None, "ratio": None}), flush=True)


def prepare_chunk(chunk):
    return [prepare(s) for s in chunk]


def read_smiles(path):
    """The SMILES column of a CSV table, one entry per data record."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader)]
        column = header.index("smiles")
        out = []
        for row in reader:
            if not row:
                continue
            out.append(row[column].strip() if len(row) == len(header) else "")
        return out


def run(paths, pool):
    """Reads and prepares every file; returns [(path, [result per record])]."""
    results = []
    for path in paths:
        smiles = read_smiles(path)
        if pool is None:
            prepared = [prepare(s) if s else None for s in smiles]
        else:
            chunk = 64
            chunks = [smiles[i:i + chunk] for i in range(0, len(smiles), chunk)]
            prepared = [r for part in pool.imap(prepare_chunk, chunks) for r in part]
        results.append((path, prepared))
    return results


def emit(metric, value, unit):
    print(json.dumps({"bench": "ingest_python", "metric": metric, "value": value,
                      "unit": unit, "baseline": None, "ratio": None}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret", required=True)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--dump")
    parser.add_argument("--always-standardise", action="store_true")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    secret = args.secret.encode()
    init_worker(secret, args.always_standardise)
    if args.stages:
        profile_stages(args.files)
        return 0

    pools = {}
    for procs in [int(p) for p in args.processes.split(",")]:
        pool = None
        if procs > 1:
            pool = multiprocessing.get_context("fork").Pool(
                procs, initializer=init_worker, initargs=(secret, args.always_standardise))
        pools[procs] = pool
        results = run(args.files, pool)  # warm-up
        if procs == 1 and args.dump:
            with open(args.dump, "w") as out:
                for path, prepared in results:
                    for record, r in enumerate(prepared, start=1):
                        if r is None:
                            continue
                        canonical, scaffold, fold, bits = r
                        out.write(f"{path}\t{record}\t{canonical}\t{scaffold}\t{fold}\t"
                                  f"{' '.join(map(str, bits))}\n")
    records = sum(len(read_smiles(p)) for p in args.files)

    def once(procs):
        started, cpu = time.perf_counter(), time.process_time()
        run(args.files, pools[procs])
        return time.perf_counter() - started, time.process_time() - cpu

    if args.serve:
        print("ready", flush=True)
        for line in sys.stdin:
            print("%.6f %.6f" % once(int(line)), flush=True)
    else:
        for procs in pools:
            times = [once(procs)[0] for _ in range(args.repetitions)]
            emit(f"records_per_s_{procs}proc", records / statistics.median(times), "records/s")
    for pool in pools.values():
        if pool is not None:
            pool.close()
            pool.join()
    if args.serve:
        return 0
    emit("records", records, "records")
    emit("rejected", sum(r is None for _, rs in run(args.files, None) for r in rs), "records")


if __name__ == "__main__":
    sys.exit(main())
