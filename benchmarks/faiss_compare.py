#!/usr/bin/env python3
"""Sluice's semantic index against faiss IndexFlatIP, single-threaded, on the same vectors.

Runs `sluice-bench vectors --write FILE` (Sluice's exact and int8 search, timed in-process),
then loads the very same vectors into faiss (faiss-cpu from PyPI, installed into
.venv-bench by this script: a benchmark dependency only, never Sluice's) and times
IndexFlatIP one query at a time with one thread. Prints both.

    swift build -c release --product sluice-bench
    python3 benchmarks/faiss_compare.py                 # 100,000 × 384, 500 queries
"""
import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-bench")


def ensure_venv():
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "faiss-cpu", "numpy"], check=True)
    return python


FAISS_PART = r'''
import sys, time
import numpy as np, faiss
path, n, q, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
raw = np.fromfile(path, dtype="<f4")
xb = raw[: n * dim].reshape(n, dim).copy()
xq = raw[n * dim : (n + q) * dim].reshape(q, dim).copy()
faiss.normalize_L2(xb); faiss.normalize_L2(xq)
faiss.omp_set_num_threads(1)
index = faiss.IndexFlatIP(dim)
index.add(xb)
times = []
for i in range(q):
    t = time.perf_counter()
    index.search(xq[i : i + 1], 1)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"faiss IndexFlatIP (1 thread, faiss {faiss.__version__})  p50 {times[len(times)//2]:.3f} ms  p99 {times[int(len(times)*0.99)]:.3f} ms")
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "sluice-bench"))
    opts = ap.parse_args()
    if not os.path.exists(opts.bench):
        raise SystemExit(f"{opts.bench} not found: run `swift build -c release --product sluice-bench` first")
    python = ensure_venv()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vectors.f32")
        subprocess.run([opts.bench, "vectors", "--entries", str(opts.entries), "--dim", str(opts.dim),
                        "--queries", str(opts.queries), "--write", path], check=True)
        subprocess.run([python, "-c", FAISS_PART, path, str(opts.entries), str(opts.queries), str(opts.dim)], check=True)


if __name__ == "__main__":
    main()
