#!/usr/bin/env python3
"""Sluice against Redis, every figure measured in one run on this machine; writes RESULTS.md.

Called by benchmarks/run.sh after a release build. Each comparison alternates the servers for
--rounds rounds and keeps the median; every server is on 127.0.0.1 and every run is bounded by
a request count. The reference client is redis-benchmark (-c 50 -d 256); `sluice bench` is
checked against it on the same workload.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_redis import bench, free_port, stop_process, wait_port  # noqa: E402
from llm_cost import table as llm_table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLUICE = os.path.join(ROOT, ".build", "release", "sluice")
BENCH = os.path.join(ROOT, ".build", "release", "sluice-bench")


class Servers:
    """Every process this run starts, stopped at the end whatever happens."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-suite-")
        self.procs = []

    def redis(self, *extra):
        port = free_port()
        d = tempfile.mkdtemp(dir=self.tmp)
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d, *extra],
                             stdout=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(port, p)
        return port, p

    def sluice(self, *extra):
        port = free_port()
        args = list(extra)
        if "--redis" not in args:
            args += ["--data-dir", tempfile.mkdtemp(dir=self.tmp)]
        p = subprocess.Popen([SLUICE, "serve", "--port", str(port), "--http-port", "0", "--log-level", "warning", *args],
                             stdout=subprocess.DEVNULL)
        self.procs.append(p)
        wait_port(port, p)
        return port, p

    def stop(self, p):
        stop_process(p)

    def close(self):
        for p in self.procs:
            self.stop(p)
        shutil.rmtree(self.tmp, ignore_errors=True)


def rb(port, args):
    """redis-benchmark's requests/s for one test (the only one its args select)."""
    res = bench(port, args, label="x")
    return res.get("x", 0.0)


def prefill(port, keys, prefix="key:", size=256):
    out = subprocess.run([SLUICE, "bench", "-p", str(port), "--quiet", "--json", "-t", "set", "--prefill", "-r", str(keys),
                          "-n", "1", "-d", str(size), "--key-prefix", prefix, "-c", "16", "-P", "64"],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"prefill failed: {out.stderr}")
    # redis-benchmark without -r uses the literal key "key:__rand_int__": the one-key tests read it.
    subprocess.run(["redis-cli", "-p", str(port), "SET", "key:__rand_int__", "x" * size], capture_output=True, check=True)


def median_rounds(rounds, servers, args_for):
    runs = {name: [] for name, _ in servers}
    for _ in range(rounds):
        for name, port in servers:
            runs[name].append(rb(port, args_for(name)))
    return {name: statistics.median(v) for name, v in runs.items()}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    redis_v = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "redis": redis_v, "commit": commit}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=300_000, help="requests per pipelined test")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "RESULTS.md"))
    opts = ap.parse_args()
    if not os.path.exists(SLUICE):
        raise SystemExit("build first: swift build -c release")
    started = time.time()
    n, n1 = opts.n, max(opts.n // 3, 10_000)
    base = ["-c", "50", "-d", "256"]
    rows = []      # (section, workload, sluice, reference, ratio, target, meets)
    notes = []
    s = Servers()
    try:
        # --- exact cache, embedded mode, against Redis without persistence and with AOF everysec
        print("==> exact cache: Sluice (embedded) vs Redis", flush=True)
        redis_port, _ = s.redis("--appendonly", "no")
        aof_port, _ = s.redis("--appendonly", "yes", "--appendfsync", "everysec")
        sluice_port, sluice_proc = s.sluice()
        for port in (redis_port, aof_port, sluice_port):
            prefill(port, 100_000)
        trio = [("redis", redis_port), ("aof", aof_port), ("sluice", sluice_port)]
        workloads = [
            ("GET -P 16, one key", ["-t", "get", "-P", "16", "-n", str(n)], "redis", 1.0),
            ("GET -P 16, 100,000 keys", ["-t", "get", "-P", "16", "-n", str(n), "-r", "100000"], "redis", 1.0),
            ("SET -P 16, one key", ["-t", "set", "-P", "16", "-n", str(n)], "aof", 1.0),
            ("SET -P 16, 100,000 keys", ["-t", "set", "-P", "16", "-n", str(n), "-r", "100000"], "aof", 1.0),
            ("GET, no pipelining, 100,000 keys", ["-t", "get", "-n", str(n1), "-r", "100000"], "redis", 1.0),
            ("SET, no pipelining, 100,000 keys", ["-t", "set", "-n", str(n1), "-r", "100000"], "aof", 1.0),
        ]
        for name, args, ref, target in workloads:
            m = median_rounds(opts.rounds, trio, lambda _: [*base, *args])
            print(f"  {name}: redis {m['redis']:,.0f}  redis-aof {m['aof']:,.0f}  sluice {m['sluice']:,.0f}", flush=True)
            rows.append(("exact", name, m["sluice"], m[ref], ref, target))
            if ref == "aof":
                rows.append(("exact", name + " (vs Redis without persistence)", m["sluice"], m["redis"], "redis", None))
        s.stop(sluice_proc)

        # --- threads
        print("==> threads: Sluice --threads 1, 2, 4, 8", flush=True)
        by_threads = {}
        for t in (1, 2, 4, 8):
            port, proc = s.sluice("--threads", str(t))
            prefill(port, 100_000)
            get = statistics.median(rb(port, [*base, "-t", "get", "-P", "16", "-n", str(n), "-r", "100000"]) for _ in range(opts.rounds))
            st = statistics.median(rb(port, [*base, "-t", "set", "-P", "16", "-n", str(n), "-r", "100000"]) for _ in range(opts.rounds))
            by_threads[t] = (get, st)
            print(f"  --threads {t}: GET {get:,.0f}  SET {st:,.0f}", flush=True)
            s.stop(proc)

        # --- shared mode
        print("==> shared mode: Sluice --redis vs direct Redis", flush=True)
        shared_port, shared_proc = s.sluice("--redis", f"redis://127.0.0.1:{redis_port}")
        duo = [("redis", redis_port), ("sluice", shared_port)]
        m = median_rounds(opts.rounds, duo, lambda _: [*base, "-t", "set", "-P", "16", "-n", str(n), "-r", "100000"])
        rows.append(("shared", "SET -P 16, 100,000 keys (Sluice --redis vs direct Redis)", m["sluice"], m["redis"], "redis", 0.5))
        print(f"  SET: redis {m['redis']:,.0f}  sluice {m['sluice']:,.0f}", flush=True)
        sha = subprocess.run(["redis-cli", "-p", str(redis_port), "SCRIPT", "LOAD", open(os.path.join(ROOT, "benchmarks", "token_bucket.lua")).read()],
                             capture_output=True, text=True, check=True).stdout.strip()
        cmds = {"redis": ["EVALSHA", sha, "1", "rl:__rand_int__", "1000000", "100000000", "1"],
                "sluice": ["RL.TAKE", "rl:__rand_int__", "1000000", "100000000", "TOKENS", "1"]}
        m = median_rounds(opts.rounds, duo, lambda name: ["-c", "50", "-P", "16", "-n", str(n1), "-r", "10000", *cmds[name]])
        rows.append(("shared", "RL.TAKE -P 16, 10,000 keys (vs EVALSHA token bucket)", m["sluice"], m["redis"], "redis", 1.0))
        print(f"  RL.TAKE: redis EVALSHA {m['redis']:,.0f}  sluice {m['sluice']:,.0f}", flush=True)
        s.stop(shared_proc)

        # --- LLM.GET against the calls it replaces (issue 17): benchmarks/llm_cost.py starts its own servers
        llm_cost = {}
        for mode in ("embedded", "shared"):
            print(f"==> LLM.GET against CACHE.GET and CACHE.GET + SEM.GET, {mode} (server CPU per question)", flush=True)
            out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "llm_cost.py"), "--json", "--pairs", "30",
                                  *(["--shared"] if mode == "shared" else [])], capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                raise SystemExit(f"llm_cost.py failed: {out.stdout[-300:]}{out.stderr[-300:]}")
            llm_cost[mode] = json.loads(out.stdout)
            for r in llm_cost[mode]:
                print(f"  {r['workload']}, {r['depth']} in flight: {r['ratio']:.3f} ({r['q1']:.3f}-{r['q3']:.3f})", flush=True)

        # --- memory per entry
        print("==> memory per entry: 1,000,000 x (15-byte key, 64-byte value)", flush=True)
        mem_redis_port, mem_redis = s.redis("--appendonly", "no")
        mem_sluice_port, mem_sluice = s.sluice("--l1-max-memory", "2gb")
        before = {"redis": rss_kib(mem_redis.pid), "sluice": rss_kib(mem_sluice.pid)}
        for port in (mem_redis_port, mem_sluice_port):
            prefill(port, 1_000_000, prefix="kk:", size=64)   # "kk:" + 12 digits = 15 bytes
        # Let Sluice's SQLite writer commit what it gathered (up to 2 s) before reading the sizes.
        time.sleep(5)
        per = {name: (rss_kib(p.pid) - before[name]) * 1024 / 1_000_000 for name, p in (("redis", mem_redis), ("sluice", mem_sluice))}
        print(f"  bytes/entry: redis {per['redis']:.0f}  sluice {per['sluice']:.0f}", flush=True)
        s.stop(mem_sluice)
        s.stop(mem_redis)

        # --- the load generator against redis-benchmark
        print("==> sluice bench against redis-benchmark (on redis-server)", flush=True)
        agree = []
        for label, args in (("GET -P 16", ["-t", "get", "-P", "16", "-n", str(n), "-r", "100000"]),
                            ("SET -P 16", ["-t", "set", "-P", "16", "-n", str(n), "-r", "100000"]),
                            ("GET", ["-t", "get", "-n", str(n1), "-r", "100000"])):
            ours, theirs = [], []
            for _ in range(opts.rounds):
                theirs.append(rb(redis_port, [*base, *args]))
                out = subprocess.run([SLUICE, "bench", "-p", str(redis_port), "--quiet", "--json", *base, *args],
                                     capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise SystemExit(f"sluice bench failed: {out.stderr}")
                ours.append(json.loads(out.stdout)["opsPerSecond"])
            o, t = statistics.median(ours), statistics.median(theirs)
            agree.append((label, o, t))
            print(f"  {label}: sluice bench {o:,.0f}  redis-benchmark {t:,.0f}", flush=True)
        # --- vector search against faiss (benchmarks/faiss_compare.py installs faiss-cpu in .venv-bench)
        print("==> vector search: int8 and exact top-1, 100,000 x 384, against faiss IndexFlatIP", flush=True)
        vec = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "faiss_compare.py"), "--queries", "300"],
                             capture_output=True, text=True, timeout=900)
        vectors = {}
        for line in vec.stdout.splitlines():
            mt = re.match(r"^(exact|int8)\s+p50 ([0-9.]+) ms.*?(recall@1 ([0-9.]+))?$", line)
            if mt:
                vectors[mt.group(1)] = (float(mt.group(2)), mt.group(4))
            mf = re.match(r"^faiss .*p50 ([0-9.]+) ms", line)
            if mf:
                vectors["faiss"] = (float(mf.group(1)), None)
            mk = re.search(r"kernels (\S+)", line)
            if mk:
                vectors["kernels"] = mk.group(1)
        print("  " + (", ".join(f"{k} {v}" for k, v in vectors.items()) or vec.stderr[-300:]), flush=True)
        # --- the inverted lists at 1,000,000 x 384 (the semantic index of a large namespace)
        large = []
        for data, query in (("clustered", "near"), ("clustered", "random"), ("uniform", "near")):
            print(f"==> vector search through inverted lists: 1,000,000 x 384, {data} data, {query} queries", flush=True)
            out = subprocess.run([BENCH, "vectors", "--entries", "1000000", "--data", data, "--query", query, "--lists=-1",
                                  "--queries", "200", "--lists-only"], capture_output=True, text=True, timeout=900)
            exact = re.search(r"^exact\s+p50 ([0-9.]+) ms", out.stdout, re.M)
            ml = re.search(r"^lists\s+p50 ([0-9.]+) ms\s+p99 ([0-9.]+) ms\s+\((\d+) lists, (\d+) probed.*recall@1 ([0-9.]+)", out.stdout, re.M)
            if exact and ml:
                large.append((data, query, float(exact.group(1)), float(ml.group(1)), float(ml.group(2)), int(ml.group(3)),
                              int(ml.group(4)), float(ml.group(5))))
                print(f"  exact {exact.group(1)} ms, lists p50 {ml.group(1)} ms p99 {ml.group(2)} ms, recall@1 {ml.group(5)}", flush=True)
            else:
                print("  " + (out.stdout + out.stderr)[-300:], flush=True)
    finally:
        s.close()

    took = time.time() - started
    m = machine()
    lines = ["# Benchmark results", "",
             f"Written by `benchmarks/run.sh` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC in {took / 60:.1f} minutes.", "",
             f"- machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}",
             f"- {m['redis']}",
             f"- Sluice commit {m['commit']}, release build, default flags unless said (embedded SQLite L2, `--fsync everysec`)",
             f"- client: redis-benchmark `-c 50 -d 256`, {opts.rounds} round(s) per figure with the servers alternating, median",
             "- Redis without persistence is `--save '' --appendonly no`; with AOF it is `--appendonly yes --appendfsync everysec`,",
             "  the durability Sluice's `everysec` promises. Keyspaces are filled before GETs.",
             "- Every process runs on the same 2 cores as the client: absolute figures move with the machine's load; ratios are",
             "  what each run compares.", "",
             "## Throughput against Redis", "",
             "| workload | Sluice req/s | reference | reference req/s | ratio | target | meets |",
             "|---|---:|---|---:|---:|---:|---|"]
    names = {"redis": "Redis", "aof": "Redis AOF everysec"}
    for section, name, sl, ref, refname, target in rows:
        ratio = sl / ref if ref else 0
        meets = "" if target is None else ("yes" if ratio >= target else "**no**")
        tgt = "" if target is None else f"≥ {target:.1f}"
        label = name if section == "exact" else f"shared: {name}"
        lines.append(f"| {label} | {sl:,.0f} | {names[refname]} | {ref:,.0f} | {ratio:.2f} | {tgt} | {meets} |")
    lines += ["", "## Threads (`sluice serve --threads N`, `-P 16`, 100,000 keys)", "",
              "| threads | GET req/s | SET req/s | none below the 2-thread figure |", "|---:|---:|---:|---|"]
    g2, s2 = by_threads[2]
    for t, (g, st) in by_threads.items():
        # One thread on two cores is expected below two; the question is whether adding threads
        # past that loses throughput.
        ok = "(fewer threads than cores)" if t < 2 else "yes" if (g >= 0.95 * g2 and st >= 0.95 * s2) else "**no**"
        lines.append(f"| {t} | {g:,.0f} | {st:,.0f} | {ok} |")
    lines += ["", "(within 5% counts as not below: the run-to-run noise of this machine)", "",
              "## LLM.GET against the calls it replaces (server CPU per question)", "",
              "`benchmarks/llm_cost.py`: Sluice `--threads 1` on one core, 8 client connections on the other; 1,000 answers",
              "stored by LLM.SET. An L1 hit against CACHE.GET of the key LLM.GET derives (the same entry); a miss against",
              "CACHE.GET, then SEM.GET of the same prompt (two round trips). Blocks of the same questions both ways in ABBA",
              "order, 30 pairs: the median of the pairs' ratios and its quartiles. \"yes\": three pairs in four meet the",
              "target; \"within the noise\": the median does, a quarter of the pairs not.", ""]
    for mode, rows_ in llm_cost.items():
        lines += [f"Sluice {mode}{' (`--redis`, L2 in redis-server)' if mode == 'shared' else ''}:", "",
                  llm_table(rows_, 8), ""]
    lines += [
              "## Memory per entry (1,000,000 × 15-byte key, 64-byte value)", "",
              "Resident memory after filling minus before, divided by the entries.", "",
              "| server | bytes per entry | target |", "|---|---:|---|",
              f"| Redis | {per['redis']:.0f} | |",
              f"| Sluice (embedded, L1 + directory of the SQLite file) | {per['sluice']:.0f} | ≤ Redis; aim 120 |", "",
              "## `sluice bench` against redis-benchmark (same workload, on redis-server)", "",
              "| workload | sluice bench req/s | redis-benchmark req/s | difference |", "|---|---:|---:|---:|"]
    for label, o, t in agree:
        lines.append(f"| {label} | {o:,.0f} | {t:,.0f} | {100 * (o - t) / t:+.0f}% |" if t else f"| {label} | {o:,.0f} | 0 | - |")
    lines += ["", "## Vector search, top-1 of 100,000 × 384, one thread, one query at a time (p50)", ""]
    if "faiss" in vectors and "int8" in vectors:
        f = vectors["faiss"][0]
        lines += [f"Sluice's kernels on this CPU: `{vectors.get('kernels', '?')}` (chosen at run time).", "",
                  "| search | p50 ms | faiss's time / this | recall@1 | target |", "|---|---:|---:|---:|---|",
                  f"| faiss IndexFlatIP | {f:.3f} | 1.00 | 1 | |",
                  f"| Sluice exact | {vectors['exact'][0]:.3f} | {f / vectors['exact'][0]:.2f} | 1 | |",
                  f"| Sluice int8 + exact re-rank of 64 | {vectors['int8'][0]:.3f} | {f / vectors['int8'][0]:.2f} | {vectors['int8'][1]} | ≥ 3× faster, recall ≥ 0.99 |"]
    else:
        lines.append("faiss could not be installed or run here; see benchmarks/faiss_compare.py.")
    lines += ["", "## Vector search through inverted lists, top-1 of 1,000,000 × 384, one thread (p50, p99)", "",
              "`sluice-bench vectors --entries 1000000 --data D --query Q --lists=-1 --lists-only`: the index is partitioned",
              "as the server does it (k-means at 32,768 rows, later rows join their nearest list), int8 scores in the probed",
              "lists, exact re-rank of the best 64. Clustered data: 10,000 topics, each vector its topic's centre plus as much",
              "noise; near queries: a stored vector plus noise (cosine ≈ 0.8 to it, a reworded prompt); random queries: any",
              "direction (their nearest is barely nearer than the next: the lists' worst case, and not what a cache is asked).", "",
              "| data | queries | exact p50 ms | lists p50 ms | lists p99 ms | lists, probed | recall@1 | target |",
              "|---|---|---:|---:|---:|---|---:|---|"]
    for data, query, ex, p50, p99, nl, pr, rc in large:
        target = "< 5 ms, recall ≥ 0.95" if (data, query) == ("clustered", "near") else "reported"
        lines.append(f"| {data} | {query} | {ex:.1f} | {p50:.2f} | {p99:.2f} | {nl}, {pr} | {rc:.3f} | {target} |")
    lines.append("")
    with open(opts.out, "w") as f:
        f.write("\n".join(lines))
    print(f"wrote {opts.out} ({took / 60:.1f} min)")


if __name__ == "__main__":
    sys.exit(main())
