#!/usr/bin/env python3
"""Soak test: many connections with churn and a mixed workload against a real `sluice serve`,
for a bounded time; prints connections, ops/s and resident memory as it goes, and checks that
memory stays flat after the warm-up.

    swift build -c release
    python3 benchmarks/soak.py --connections 10000 --seconds 180      # the issue's soak
    python3 benchmarks/soak.py --connections 1000 --seconds 20        # what the tests run

Each connection sends a small pipeline of mixed commands (GET, SET with TTLs, CACHE.GET with
leases, CACHE.SET with tokens, RL.TAKE, CB.ALLOW/REPORT, SEM.GET, SEM.SET), reads the replies,
and every so often closes and reconnects (churn). Only 127.0.0.1 is contacted.
"""
import argparse
import asyncio
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def resp(*words):
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        b = w if isinstance(w, bytes) else str(w).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def batch(rng):
    """A pipeline of 8 mixed requests; returns (bytes, how many replies to read)."""
    parts = []
    for _ in range(8):
        k = rng.randrange(50_000)
        op = rng.random()
        if op < 0.35:
            parts.append(resp("GET", f"k{k}"))
        elif op < 0.55:
            parts.append(resp("SET", f"k{k}", b"v" * rng.choice((16, 64, 256, 1024)), "EX", rng.randrange(1, 30)))
        elif op < 0.65:
            parts.append(resp("CACHE.GET", f"p{k % 5000}", "LEASE", 2000))
        elif op < 0.72:
            parts.append(resp("CACHE.SET", f"p{k % 5000}", "answer", "PX", 20000, "TOKENS", 100, "COST", "0.001"))
        elif op < 0.85:
            parts.append(resp("RL.TAKE", f"user{k % 1000}", 600, 100000, "TOKENS", 50))
        elif op < 0.92:
            parts.append(resp("CB.ALLOW", f"up{k % 20}"))
        elif op < 0.97:
            parts.append(resp("SEM.GET", "soak", f"how do I do thing {k % 500} quickly"))
        else:
            parts.append(resp("SEM.SET", "soak", f"how do I do thing {k % 500} fast", f"answer {k}", "PX", 60000))
    return b"".join(parts), len(parts)


async def read_replies(reader, n):
    """Reads n whole RESP replies (nested arrays included); returns how many were errors."""
    errors = 0

    async def one():
        nonlocal errors
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        kind = line[:1]
        if kind == b"-":
            errors += 1
        elif kind == b"$":
            size = int(line[1:-2])
            if size >= 0:
                await reader.readexactly(size + 2)
        elif kind in (b"*", b"%"):
            count = int(line[1:-2])
            for _ in range(max(count, 0) * (2 if kind == b"%" else 1)):
                await one()
    for _ in range(n):
        await one()
    return errors


async def client(port, deadline, stats, rng, churn):
    while time.time() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.1)
            continue
        stats["open"] += 1
        try:
            while time.time() < deadline:
                data, n = batch(rng)
                writer.write(data)
                await writer.drain()
                stats["errors"] += await read_replies(reader, n)
                stats["ops"] += n
                if rng.random() < churn:
                    break
                await asyncio.sleep(rng.random() * 0.5)
        except (ConnectionError, asyncio.IncompleteReadError):
            stats["dropped"] += 1
        finally:
            stats["open"] -= 1
            writer.close()
            # Wait for the close to reach the server before connecting again: otherwise churn
            # briefly holds more than --connections open and --maxclients refuses some.
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass


async def run(port, pid, connections, seconds, churn, warmup):
    stats = {"ops": 0, "errors": 0, "open": 0, "dropped": 0, "connect_errors": 0}
    deadline = time.time() + seconds
    tasks = []
    for i in range(connections):
        tasks.append(asyncio.create_task(client(port, deadline, stats, random.Random(i), churn)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)  # ramp up
    samples = []
    last_ops, last_t = 0, time.time()
    print(f"{'t (s)':>6} {'open':>7} {'ops/s':>9} {'RSS MB':>8} {'errors':>7}", flush=True)
    start = time.time()
    while time.time() < deadline:
        await asyncio.sleep(min(10, max(deadline - time.time(), 0.1)))
        now = time.time()
        rate = (stats["ops"] - last_ops) / (now - last_t)
        last_ops, last_t = stats["ops"], now
        rss = rss_mb(pid)
        samples.append((now - start, rss))
        print(f"{now - start:6.0f} {stats['open']:7d} {rate:9.0f} {rss:8.1f} {stats['errors']:7d}", flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    after_warmup = [r for t, r in samples if t >= warmup] or [samples[-1][1]]
    return stats, after_warmup


def server_counters(port):
    """STATS as a dict of name -> integer (a plain socket: no client library needed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"STATS\r\n")
        data = b""
        c.settimeout(1)
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
    lines = data.split(b"\r\n")
    out, i = {}, 0
    while i < len(lines) - 3:
        if lines[i].startswith(b"$") and lines[i + 2].startswith(b":"):
            out[lines[i + 1].decode(errors="replace")] = int(lines[i + 2][1:])
            i += 3
        else:
            i += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--churn", type=float, default=0.05, help="chance a connection reconnects after a batch")
    ap.add_argument("--warmup", type=float, default=None, help="seconds before RSS must stay flat (default: a third)")
    ap.add_argument("--max-growth", type=float, default=0.25, help="allowed RSS growth after the warm-up (share)")
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build", "release", "sluice"))
    opts = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, opts.connections * 2 + 256)), hard))
    tmp = tempfile.mkdtemp(prefix="sluice-soak-")
    port = free_port()
    proc = subprocess.Popen([opts.sluice, "serve", "--port", str(port), "--data-dir", tmp, "--log-level", "warning",
                             "--maxclients", str(opts.connections + opts.connections // 20 + 100)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        start_rss = rss_mb(proc.pid)
        stats, after = asyncio.run(run(port, proc.pid, opts.connections, opts.seconds, opts.churn,
                                       opts.warmup if opts.warmup is not None else opts.seconds / 3))
        end_rss = rss_mb(proc.pid)
        counters = server_counters(port)
        print("server: " + ", ".join(f"{k} {counters.get(k, '?')}" for k in
                                     ("connected_clients", "rejected_connections", "idle_disconnects", "output_limit_disconnects",
                                      "protocol_errors", "rejected_requests")))
        growth = (max(after) - after[0]) / after[0] if after[0] else 0
        print(f"\nconnections {opts.connections}, {opts.seconds} s: {stats['ops']:,} ops ({stats['ops'] / opts.seconds:,.0f}/s), "
              f"{stats['errors']} error replies, {stats['dropped']} dropped, {stats['connect_errors']} connect errors")
        print(f"RSS: {start_rss:.1f} MB at start, {after[0]:.1f} MB after warm-up, {max(after):.1f} MB peak after, "
              f"{end_rss:.1f} MB at the end (growth after warm-up {growth:.0%})")
        ok = proc.poll() is None and stats["dropped"] == 0 and growth <= opts.max_growth
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
