#!/usr/bin/env python3
"""GPTCache's own semantic-cache benchmark, through the protocol, against a running Sluice.

Stores every `origin` of ../shared/eval/gptcache_mock_data.json with SEM.SET (its answer is its
index), queries with every `similar` by SEM.GET, and counts a *correct* hit when the pair's own
answer (or an identical origin's) comes back, a *wrong* hit when another pair's answer does, a
*miss* when nothing does — at several MINSCORE thresholds and at the server's default.
GPTCache's published figures (ONNX embedder, threshold 0.8): 904 correct, 92 wrong, 3 misses.

    .build/release/sluice serve --port 7379 &
    .venv-test/bin/python benchmarks/gptcache_bench.py --port 7379

Needs redis-py (scripts/test.sh puts it in .venv-test). Talks to 127.0.0.1 only.
"""
import argparse
import json
import os
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=7379)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "eval", "gptcache_mock_data.json"))
    ap.add_argument("--thresholds", default="0.5,0.6,0.7,0.8,0.9")
    ap.add_argument("--namespace", default=f"gptcache-bench-{int(time.time())}")
    opts = ap.parse_args()

    pairs = json.load(open(opts.data))
    r = redis.Redis(host="127.0.0.1", port=opts.port, protocol=2)
    ns = opts.namespace
    r.execute_command("SEM.DEL", ns)
    pipe = r.pipeline(transaction=False)
    for i, p in enumerate(pairs):
        pipe.execute_command("SEM.SET", ns, p["origin"], str(i))
    started = time.time()
    pipe.execute()
    set_seconds = time.time() - started
    origins = [p["origin"] for p in pairs]

    def run(minscore):
        pipe = r.pipeline(transaction=False)
        for p in pairs:
            args = ["SEM.GET", ns, p["similar"]] + (["MINSCORE", minscore] if minscore is not None else [])
            pipe.execute_command(*args)
        t = time.time()
        replies = pipe.execute()
        elapsed = time.time() - t
        correct = wrong = miss = 0
        for i, reply in enumerate(replies):
            if reply is None:
                miss += 1
                continue
            answer = int(reply[0])
            if answer == i or origins[answer] == origins[i]:
                correct += 1
            else:
                wrong += 1
        return correct, wrong, miss, elapsed

    print(f"{len(pairs)} pairs; SEM.SET of all origins took {set_seconds * 1000:.0f} ms")
    print(f"{'threshold':>10} {'correct':>8} {'wrong':>6} {'miss':>5}   SEM.GET per request")
    for t in opts.thresholds.split(","):
        c, w, m, e = run(t)
        print(f"{t:>10} {c:>8} {w:>6} {m:>5}   {e / len(pairs) * 1e6:.0f} µs")
    c, w, m, e = run(None)
    default = dict(zip(*[iter(r.execute_command("SEM.INFO", ns))] * 2))[b"min_score"]
    print(f"{'default ' + default.decode():>10} {c:>8} {w:>6} {m:>5}   {e / len(pairs) * 1e6:.0f} µs")
    print("GPTCache published (ONNX, 0.8):  904 correct, 92 wrong, 3 misses")
    r.execute_command("SEM.DEL", ns)


if __name__ == "__main__":
    main()
