#!/usr/bin/env python3
"""SEM.GET latency through the protocol with N entries in one namespace: p50 / p99 / max of
sequential requests (one at a time, as an agent server asks), after loading the namespace.

    .build/release/sluice serve --port 7399 --data-dir /tmp/sem-lat [--sem-verifier wordnet] &
    .venv-test/bin/python benchmarks/semantic/latency.py --port 7399 --entries 10000 --requests 2000

Prompts are generated from word lists (questions of 5 to 12 words); queries are a mix of stored
prompts with one word changed and unseen prompts. Only 127.0.0.1 is contacted.
"""
import argparse
import gc
import random
import time

import redis

SUBJECTS = "python java rust docker kubernetes linux windows excel paris london tokyo aspirin insulin bread pasta chicken mortgage pension bitcoin invoice password router printer email camera".split()
VERBS = "install remove update configure reset open close export import compare explain fix cook bake price cancel book".split()
EXTRAS = "on a laptop|for beginners|in five minutes|without internet|at home|for a small team|step by step|in 2024|on a budget|for my parents".split("|")


def prompt(rng):
    return f"How do I {rng.choice(VERBS)} {rng.choice(SUBJECTS)} {rng.choice(EXTRAS)} and {rng.choice(SUBJECTS)}?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=7379)
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument("--namespace", default=f"latency-{int(time.time())}")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds to wait after loading, so the load's background writes (SQLite) are done: steady state")
    opts = ap.parse_args()
    rng = random.Random(1)
    r = redis.Redis(port=opts.port, protocol=2)
    stored = []
    pipe = r.pipeline(transaction=False)
    for i in range(opts.entries):
        p = prompt(rng) + f" #{i}"
        stored.append(p)
        pipe.execute_command("SEM.SET", opts.namespace, p, f"answer {i}")
        if len(pipe) >= 1000:
            pipe.execute()
    pipe.execute()
    time.sleep(opts.settle)
    # The client's own garbage collector must not be counted as the server's latency.
    gc.collect()
    gc.disable()
    times = []
    hits = 0
    for i in range(opts.requests):
        q = rng.choice(stored).replace(rng.choice(VERBS), rng.choice(VERBS)) if i % 2 else prompt(rng)
        t = time.perf_counter()
        reply = r.execute_command("SEM.GET", opts.namespace, q)
        times.append(time.perf_counter() - t)
        hits += reply is not None
    gc.enable()
    times.sort()
    ms = lambda x: f"{1000 * x:.3f} ms"
    print(f"{opts.entries} entries, {opts.requests} sequential SEM.GET: p50 {ms(times[len(times) // 2])}, "
          f"p99 {ms(times[int(len(times) * 0.99)])}, max {ms(times[-1])}; {hits} hits")
    r.execute_command("SEM.DEL", opts.namespace)


if __name__ == "__main__":
    main()
