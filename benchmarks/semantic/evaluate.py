#!/usr/bin/env python3
"""Scores the semantic cache on the labelled pairs in pairs.jsonl, through the protocol.

Each pair gets a namespace of its own: SEM.SET the cached prompt, SEM.GET the query. A trap
answered from cache is a wrong hit; a paraphrase answered is a right one. The pairs are split
once, by a hash of their id, into a development part (about two thirds: look at it, tune on it)
and a held-back part (one third: report it, never tune on it):

    .build/release/sluice serve --port 7399 --data-dir /tmp/sem-eval --sem-verifier wordnet &
    .venv-test/bin/python benchmarks/semantic/evaluate.py --port 7399 --part heldout

--part dev|heldout|all; --show-errors lists the pairs it got wrong (dev part only, unless --part
says otherwise), with the server's WHY for refusals.
"""
import argparse
import collections
import hashlib
import json
import os
import sys

import redis

HERE = os.path.dirname(os.path.abspath(__file__))


def part_of(pair_id):
    """'heldout' for about a third of the ids, fixed by a hash (not by position or category)."""
    return "heldout" if hashlib.sha256(pair_id.encode()).digest()[0] % 3 == 0 else "dev"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7379)
    ap.add_argument("--pairs", default=os.path.join(HERE, "pairs.jsonl"))
    ap.add_argument("--part", choices=["dev", "heldout", "all"], default="dev")
    ap.add_argument("--minscore", type=float, default=None, help="MINSCORE per request (default: the server's)")
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = ap.parse_args()

    pairs = [json.loads(line) for line in open(args.pairs) if line.strip()]
    if args.part != "all":
        pairs = [p for p in pairs if part_of(p["id"]) == args.part]
    r = redis.Redis(host=args.host, port=args.port, protocol=2)
    by_category = collections.defaultdict(lambda: [0, 0])  # category -> [answered, total]
    by_domain = collections.defaultdict(lambda: [0, 0])
    errors = []
    for p in pairs:
        ns = "eval:" + p["id"]
        r.execute_command("SEM.DEL", ns)
        r.execute_command("SEM.SET", ns, p["cached"], "answer")
        extra = ["MINSCORE", str(args.minscore)] if args.minscore is not None else []
        reply = r.execute_command("SEM.GET", ns, p["query"], *extra)
        answered = reply is not None
        key = (p["label"], p["category"])
        by_category[key][0] += answered
        by_category[key][1] += 1
        by_domain[(p["label"], p["domain"])][0] += answered
        by_domain[(p["label"], p["domain"])][1] += 1
        wrong = answered if p["label"] == "trap" else not answered
        if wrong and args.show_errors:
            why = ""
            if not answered:
                try:
                    w = r.execute_command("SEM.GET", ns, p["query"], *extra, "WHY")
                    why = w[-1].decode() if isinstance(w, list) and w and isinstance(w[-1], bytes) else str(w)
                except redis.ResponseError as e:
                    why = str(e)
            errors.append((p, why))
        r.execute_command("SEM.DEL", ns)

    def total(label):
        a = sum(v[0] for k, v in by_category.items() if k[0] == label)
        n = sum(v[1] for k, v in by_category.items() if k[0] == label)
        return a, n

    traps_hit, traps = total("trap")
    paras_hit, paras = total("paraphrase")
    precision = paras_hit / (paras_hit + traps_hit) if paras_hit + traps_hit else 1.0
    summary = {
        "part": args.part, "pairs": len(pairs),
        "traps_answered": traps_hit, "traps": traps, "trap_rate": traps_hit / traps if traps else 0,
        "paraphrases_answered": paras_hit, "paraphrases": paras, "recall": paras_hit / paras if paras else 0,
        "precision": precision,
        "categories": {f"{k[0]}/{k[1]}": {"answered": v[0], "total": v[1]} for k, v in sorted(by_category.items())},
    }
    if args.json:
        print(json.dumps(summary, indent=1))
        return
    print(f"part: {args.part} ({len(pairs)} pairs)")
    print(f"{'label/category':<30} {'answered':>8} {'total':>6}")
    for (label, cat), (a, n) in sorted(by_category.items()):
        print(f"{label + '/' + cat:<30} {a:>8} {n:>6}")
    print(f"traps answered from cache: {traps_hit}/{traps} = {100 * traps_hit / max(traps, 1):.1f}%")
    print(f"paraphrases answered:      {paras_hit}/{paras} = {100 * paras_hit / max(paras, 1):.1f}%")
    print(f"precision of hits:         {100 * precision:.1f}%")
    for p, why in errors:
        print(f"  WRONG {p['id']} {p['label']}/{p['category']}: {p['cached']!r} -> {p['query']!r} {why}")


if __name__ == "__main__":
    sys.exit(main())
