#!/usr/bin/env python3
"""Throughput of Sluice against redis-server, measured in the same run with redis-benchmark.

Starts a redis-server (no persistence) and a release `sluice serve` (embedded SQLite L2) on
free loopback ports, runs the same redis-benchmark command against each, alternating, and
prints requests/s and the ratio Sluice/Redis per test (median of --rounds runs).

    swift build -c release
    python3 benchmarks/compare_redis.py                       # the issue's command
    python3 benchmarks/compare_redis.py --tests get,set -n 200000 --rounds 3

    # One command each instead of -t: Sluice's RL.TAKE against a Lua token bucket by EVALSHA
    python3 benchmarks/compare_redis.py -r 10000 \
        --redis-script benchmarks/token_bucket.lua \
        --redis-cmd 'EVALSHA {sha} 1 rl:__rand_int__ 1000000 100000000 1' \
        --sluice-cmd 'RL.TAKE rl:__rand_int__ 1000000 100000000 TOKENS 1'

Only 127.0.0.1 is contacted; every run is bounded by -n.
"""
import argparse
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp_command(*args):
    """One request in RESP, as redis-cli sends it: an array of bulk strings (str or bytes)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def stop_process(proc, grace=20):
    """SIGTERM, then SIGKILL after `grace` seconds; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_port(port, proc, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server on {port} exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def bench(port, args, label=None):
    out = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q", *args],
                         capture_output=True, text=True, timeout=900).stdout
    results = {}
    for line in out.replace("\r", "\n").splitlines():
        m = re.match(r"^(.*): ([0-9.]+) requests per second", line.strip())
        if m:
            results[label or m.group(1)] = float(m.group(2))
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tests", default="get,set", help="redis-benchmark -t list (default get,set)")
    ap.add_argument("-n", type=int, default=1_000_000, help="requests per test (default 1000000)")
    ap.add_argument("-P", type=int, default=16, help="pipeline depth (default 16)")
    ap.add_argument("-c", type=int, default=50, help="connections (default 50)")
    ap.add_argument("-d", type=int, default=256, help="value size (default 256)")
    ap.add_argument("--rounds", type=int, default=1, help="runs per server, alternating (median reported)")
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build", "release", "sluice"))
    ap.add_argument("--sluice-args", default="", help="extra arguments for sluice serve")
    ap.add_argument("--shared", action="store_true",
                    help="run Sluice in shared mode on the same redis-server (--redis), instead of the embedded SQLite L2")
    ap.add_argument("-r", type=int, default=0, help="random keyspace size for __rand_int__ (default: none)")
    ap.add_argument("--extra", default="", help="extra redis-benchmark arguments")
    ap.add_argument("--redis-cmd", help="a command for redis-server instead of -t ({sha} = the loaded script)")
    ap.add_argument("--sluice-cmd", help="the command for Sluice instead of -t")
    ap.add_argument("--redis-script", help="Lua file to SCRIPT LOAD into redis-server first")
    ap.add_argument("--baseline", help="another sluice binary (e.g. built from an older commit with --scratch-path) "
                                       "measured in the same run, for before/after figures")
    opts = ap.parse_args()

    if not os.path.exists(opts.sluice):
        raise SystemExit(f"{opts.sluice} not found: run `swift build -c release` first")
    tmp = tempfile.mkdtemp(prefix="sluice-bench-")
    redis_port, sluice_port = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    try:
        wait_port(redis_port, redis)
        mode = ["--redis", f"redis://127.0.0.1:{redis_port}"] if opts.shared else ["--data-dir", tmp + "/sluice"]
        sluice = subprocess.Popen([opts.sluice, "serve", "--port", str(sluice_port), *mode,
                                   "--log-level", "warning", *opts.sluice_args.split()], stdout=subprocess.DEVNULL)
        wait_port(sluice_port, sluice)
        servers = [("redis", redis_port), ("sluice", sluice_port)]
        if opts.baseline:
            baseline_port = free_port()
            base_mode = mode if opts.shared else ["--data-dir", tmp + "/baseline"]
            baseline = subprocess.Popen([opts.baseline, "serve", "--port", str(baseline_port), *base_mode,
                                         "--log-level", "warning", *opts.sluice_args.split()], stdout=subprocess.DEVNULL)
            wait_port(baseline_port, baseline)
            servers.insert(1, ("before", baseline_port))
        common = ["-n", str(opts.n), "-P", str(opts.P), "-c", str(opts.c), "-d", str(opts.d), *opts.extra.split()]
        if opts.r:
            common += ["-r", str(opts.r)]
        per_server = {"redis": ["-t", opts.tests, *common], "sluice": ["-t", opts.tests, *common],
                      "before": ["-t", opts.tests, *common]}
        label = None
        if opts.redis_cmd or opts.sluice_cmd:
            if not (opts.redis_cmd and opts.sluice_cmd):
                raise SystemExit("--redis-cmd and --sluice-cmd go together")
            sha = ""
            if opts.redis_script:
                sha = subprocess.run(["redis-cli", "-p", str(redis_port), "SCRIPT", "LOAD", open(opts.redis_script).read()],
                                     capture_output=True, text=True, check=True).stdout.strip()
            per_server = {"redis": [*common, *shlex.split(opts.redis_cmd.replace("{sha}", sha))],
                          "sluice": [*common, *shlex.split(opts.sluice_cmd)],
                          "before": [*common, *shlex.split(opts.sluice_cmd)]}
            label = "command"
            print(f"redis:  redis-benchmark {' '.join(per_server['redis'])}")
            print(f"sluice: redis-benchmark {' '.join(per_server['sluice'])}")
        else:
            print(f"redis-benchmark {' '.join(per_server['redis'])}")
        print(f"({opts.rounds} round(s), alternating, median)")
        runs = {name: [] for name, _ in servers}
        for r in range(opts.rounds):
            for name, port in servers:
                res = bench(port, per_server[name], label)
                runs[name].append(res)
                print(f"  round {r + 1} {name:6s} " + "  ".join(f"{k}={v:,.0f}" for k, v in res.items()), flush=True)
        tests = list(runs["redis"][0].keys())
        print()
        before = "before" in runs
        print(f"{'test':<14}{'redis rps':>14}{'sluice rps':>14}{'sluice/redis':>14}"
              + (f"{'before rps':>14}{'before/redis':>14}" if before else ""))
        for t in tests:
            red = statistics.median(x.get(t, 0) for x in runs["redis"])
            slu = statistics.median(x.get(t, 0) for x in runs["sluice"])
            line = f"{t:<14}{red:>14,.0f}{slu:>14,.0f}{(slu / red if red else 0):>14.2f}"
            if before:
                bef = statistics.median(x.get(t, 0) for x in runs["before"])
                line += f"{bef:>14,.0f}{(bef / red if red else 0):>14.2f}"
            print(line)
        print("sluice mode:", "shared (--redis, same redis-server)" if opts.shared else "embedded (SQLite L2)")
    finally:
        for p in [x for x in (locals().get("sluice"), locals().get("baseline"), redis) if x is not None]:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
