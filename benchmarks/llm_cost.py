#!/usr/bin/env python3
"""What one LLM.GET costs the server against the calls it replaces (issue 17, point 2).

A client without LLM.GET asks the exact layer, then the semantic one: CACHE.GET, and on a miss
SEM.GET of the same prompt — two round trips. LLM.GET is one. This script measures the server's
CPU per *question* both ways, for the same questions against the same entries:

- an L1 hit: LLM.GET of a stored prompt against CACHE.GET of the key LLM.GET derives for it
  (`llm:<len>:<ns>:<len>:<scope>:<prompt>`, docs/PROTOCOL.md) — the same entry, the same answer;
- a miss: LLM.GET against CACHE.GET followed by SEM.GET, for questions about other numbers than
  the 1,000 stored ones (near-duplicates the verifier refuses: the semantic layer's dearest miss)
  and for questions with nothing near them.

Each workload runs once with one question per round trip on every connection (as an agent server
asks) and once with 16 pipelined per connection. The server's CPU (INFO cpu: user + system, all of
its threads) is read around blocks of questions; LLM.GET blocks and the other side's blocks
alternate (ABBA), each pair asking the same questions, and the figure is the median of the pairs'
ratios with its quartiles — the machine's drift cancels within a pair. Only server CPU is
compared: the client here is Python and its own speed does not enter the figures.

    swift build -c release
    python3 benchmarks/llm_cost.py                  # embedded mode, about a minute
    python3 benchmarks/llm_cost.py --shared         # L2 in a redis-server this script starts
    python3 benchmarks/llm_cost.py --pairs 40 --json

Only 127.0.0.1 is contacted; every block is bounded by its question count.
"""
import argparse
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_redis import free_port, resp_command as encode, stop_process, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMESPACE = "bench"
STORED = range(1000, 2000)


def stored_prompt(n):
    return "how do I rotate the api key of project %012d" % n


def unrelated_prompt(n):
    return "which lakes freeze first in a cold winter near town %d" % n


def reply_end(buf, i=0):
    """The index just past the RESP reply that starts at i, or -1 when it is not all here."""
    j = buf.find(b"\r\n", i)
    if j < 0:
        return -1
    kind, line = buf[i:i + 1], buf[i + 1:j]
    if kind in (b"+", b"-", b":"):
        return j + 2
    if kind == b"$":
        n = int(line)
        end = j + 2 if n < 0 else j + 2 + n + 2
        return end if len(buf) >= end else -1
    if kind == b"*":
        k = j + 2
        for _ in range(max(int(line), 0)):
            k = reply_end(buf, k)
            if k < 0:
                return -1
        return k
    raise SystemExit(f"not a RESP reply: {buf[i:i + 60]!r}")


class Connections:
    """Connections that each send a batch of requests and read exactly that many replies."""

    def __init__(self, port, count):
        self.socks = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks.append(s)
        self.pending = [b""] * count

    def exchange(self, batches):
        """batches[i]: (bytes, count) for connection i; every batch is sent before any is read."""
        for s, (data, _) in zip(self.socks, batches):
            s.sendall(data)
        replies = []
        for n, (_, count) in enumerate(batches):
            got = []
            while len(got) < count:
                end = reply_end(self.pending[n]) if self.pending[n] else -1
                if end < 0:
                    chunk = self.socks[n].recv(1 << 16)
                    if not chunk:
                        raise SystemExit("the server closed a connection")
                    self.pending[n] += chunk
                    continue
                got.append(self.pending[n][:end])
                self.pending[n] = self.pending[n][end:]
            replies.append(got)
        return replies

    def command(self, *args):
        return self.exchange([(encode(*args), 1)])[0][0]


def server_cpu(conn):
    """The server's CPU seconds so far, user + system (INFO cpu)."""
    info = conn.command("INFO", "cpu").decode()
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])


class Deadline:
    """The whole run's bound: a block that would start after it stops the run (its servers are
    stopped by `main`'s cleanup)."""
    at = None

    @classmethod
    def check(cls):
        if cls.at is not None and time.monotonic() > cls.at:
            raise SystemExit("stopped: the run passed its --deadline")


def run_block(conns, probe, steps, questions, depth):
    """Asks every question through `steps` — (encode, check) per step, sent in turn: a step's
    replies are all back before the next step is sent — with `depth` questions in flight per
    connection, and checks every reply. Returns the server's CPU per question in µs."""
    Deadline.check()
    width = len(conns.socks)
    before = server_cpu(probe)
    for start in range(0, len(questions), width * depth):
        chunk = questions[start:start + width * depth]
        parts = [p for p in (chunk[i::width] for i in range(width)) if p]
        for encode_one, check in steps:
            for batch in conns.exchange([(b"".join(encode_one(q) for q in part), len(part)) for part in parts]):
                for reply in batch:
                    check(reply)
    after = server_cpu(probe)
    return (after - before) / len(questions) * 1e6


def workload(conns, probe, rng, pairs, per_block, depth, ask, llm_steps, other_steps, meets):
    """ABBA blocks of the same questions both ways; returns the summary of the paired ratios."""
    ratios, llm_us, other_us = [], [], []
    # One unmeasured block each way first: the first block after a change of workload pays for
    # caches and buffers the others find warm.
    warm = [ask(rng) for _ in range(per_block)]
    for steps in (llm_steps, other_steps):
        run_block(conns, probe, steps, warm, depth)
    for pair in range(pairs):
        questions = [ask(rng) for _ in range(per_block)]
        order = ("llm", "other") if pair % 2 == 0 else ("other", "llm")
        cost = {}
        for side in order:
            cost[side] = run_block(conns, probe, llm_steps if side == "llm" else other_steps, questions, depth)
        llm_us.append(cost["llm"])
        other_us.append(cost["other"])
        ratios.append(cost["llm"] / cost["other"])
    # Inclusive quartiles: with few pairs the default method reaches past the data.
    q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else [ratios[0]] * 3
    return {
        "llm_us": statistics.median(llm_us),
        "other_us": statistics.median(other_us),
        "ratio": statistics.median(ratios),
        "q1": q[0],
        "q3": q[2],
        "pairs_meeting": sum(meets(r) for r in ratios),
        "pairs": len(ratios),
    }


def expecting(what, test):
    """A reply check: stops the run at the first reply that is not what is compared."""
    def check(reply):
        if not test(reply):
            raise SystemExit(f"expected {what}, got {reply[:120]!r}")
    return check


# What each side must answer. An L1 hit on both sides (a CACHE.GET answered from L2 would compare
# another path); a full miss on both (SEM.GET: no answer).
LLM_L1 = expecting("an LLM.GET hit in l1", lambda r: r.startswith(b"*6\r\n$") and b"\r\n$2\r\nl1\r\n" in r)
LLM_MISS = expecting("an LLM.GET miss", lambda r: r.startswith(b"*6\r\n$-1\r\n$4\r\nmiss\r\n"))
CACHE_L1 = expecting("a CACHE.GET hit in l1 of the key LLM.GET derives",
                     lambda r: r.startswith(b"*4\r\n$") and not r.startswith(b"*4\r\n$-1") and b"\r\n$2\r\nl1\r\n" in r)
CACHE_MISS = expecting("a CACHE.GET miss", lambda r: r.startswith(b"*4\r\n$-1\r\n"))
SEM_MISS = expecting("a SEM.GET miss", lambda r: r == b"*-1\r\n")


def meeting(target):
    return (lambda r: r <= 1) if target == "<= 1" else (lambda r: r < 1)


def verdict(res, target):
    """"yes" when three pairs in four meet the target (the upper quartile does), "no" when the
    median misses it, else "within the noise": the median meets it, a quarter of the pairs not."""
    meets = meeting(target)
    return "yes" if meets(res["q3"]) else "within the noise" if meets(res["ratio"]) else "no"


def exact_key(prompt):
    p = prompt.encode()
    ns = NAMESPACE.encode()
    return b"llm:%d:%s:0::%s" % (len(ns), ns, p)


def measure(port, pairs, connections, scale=1.0, quiet=False):
    conns = Connections(port, connections)
    probe = Connections(port, 1)
    # The stored questions, by LLM.SET as an agent server stores answers.
    sets = b"".join(encode("LLM.SET", NAMESPACE, stored_prompt(n), "answer %d" % n) for n in STORED)
    got = probe.exchange([(sets, len(STORED))])[0]
    if any(r != b"+OK\r\n" for r in got):
        raise SystemExit(f"LLM.SET failed: {[r for r in got if r != b'+OK' + bytes([13, 10])][:1]!r}")
    # The embedded file's writer commits what it gathered within 2 s of the writes: let it, before
    # the first block, which would otherwise be charged with it.
    time.sleep(2.5)
    rng = random.Random(17)

    llm = lambda prompt, check: (lambda q: encode("LLM.GET", NAMESPACE, prompt(q)), check)  # noqa: E731
    cache = lambda prompt, check: (lambda q: encode("CACHE.GET", exact_key(prompt(q))), check)  # noqa: E731
    sem = lambda prompt: (lambda q: encode("SEM.GET", NAMESPACE, prompt(q)), SEM_MISS)  # noqa: E731
    rows = []
    plan = [
        ("L1 hit", "CACHE.GET of its key", lambda r: r.choice(STORED), 2000,
         [llm(stored_prompt, LLM_L1)], [cache(stored_prompt, CACHE_L1)], "<= 1"),
        ("miss, near-duplicates the verifier refuses", "CACHE.GET, then SEM.GET", lambda r: r.randrange(0, 1000), 300,
         [llm(stored_prompt, LLM_MISS)], [cache(stored_prompt, CACHE_MISS), sem(stored_prompt)], "< 1"),
        ("miss, nothing near", "CACHE.GET, then SEM.GET", lambda r: r.randrange(0, 10 ** 6), 1000,
         [llm(unrelated_prompt, LLM_MISS)], [cache(unrelated_prompt, CACHE_MISS), sem(unrelated_prompt)], "< 1"),
    ]
    for name, other, ask, per_block, llm_steps, other_steps, target in plan:
        for depth in (1, 16):
            if not quiet:
                print(f"  {name}, {depth} in flight per connection ...", file=sys.stderr, flush=True)
            res = workload(conns, probe, rng, pairs, max(int(per_block * scale), 1), depth, ask, llm_steps, other_steps,
                           meeting(target))
            rows.append(dict(res, workload=name, against=other, depth=depth, target=target, meets=verdict(res, target)))
    return rows


def table(rows, connections):
    lines = [
        f"| LLM.GET, {connections} connections | against | in flight per connection | LLM.GET µs | other µs | ratio (median) | quartiles | pairs meeting it | target | meets |",
        "|---|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['against']} | {r['depth']} | {r['llm_us']:.2f} | {r['other_us']:.2f} | "
                     f"{r['ratio']:.3f} | {r['q1']:.3f}–{r['q3']:.3f} | {r['pairs_meeting']} of {r['pairs']} | {r['target'].replace('<=', '≤')} | "
                     f"{'**no**' if r['meets'] == 'no' else r['meets']} |")
    return "\n".join(lines)


def die_with_parent():
    """In the child before exec: SIGKILL when this script dies (prctl PR_SET_PDEATHSIG; Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build", "release", "sluice"), help="the sluice binary")
    ap.add_argument("--pairs", type=int, default=20, help="ABBA pairs of blocks per workload (default 20)")
    ap.add_argument("--connections", type=int, default=8, help="client connections (default 8)")
    ap.add_argument("--scale", type=float, default=1.0, help="questions per block, as a share of the defaults (2,000 hits, "
                    "300 near misses, 1,000 other misses); the tests run it small")
    ap.add_argument("--shared", action="store_true", help="run Sluice on a redis-server this script starts")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--deadline", type=float, default=600, help="seconds the whole run may take (default 600)")
    args = ap.parse_args()
    if args.pairs < 1 or args.connections < 1 or not 0 < args.scale <= 10 or not 0 < args.deadline <= 86400:
        ap.error("--pairs and --connections must be at least 1, --scale within (0, 10], --deadline within (0, 86400]")
    # An even count: every pair run first has one run second.
    pairs = args.pairs + args.pairs % 2
    Deadline.at = time.monotonic() + args.deadline

    # The server on one core and this client on another when there are two: the client's work
    # then does not land in the server's time slices (only the server's CPU is compared anyway).
    cpus = sorted(os.sched_getaffinity(0))
    pin = len(cpus) >= 2 and shutil.which("taskset") is not None
    server_cpu_set, client_cpu_set = (str(cpus[0]), {cpus[1]}) if pin else (None, None)
    tmp = tempfile.mkdtemp(prefix="sluice-llm-cost-")
    procs = []
    # Stopped with this script whatever stops it: a caller's timeout kills it outright, and no
    # `finally` runs then (Linux: the child asks for SIGKILL when its parent dies).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    try:
        port = free_port()
        cmd = [args.sluice, "serve", "--port", str(port), "--http-port", "0", "--threads", "1", "--log-level", "warning"]
        if args.shared:
            rport = free_port()
            # redis-server beside the client, off the server's core.
            rp = subprocess.Popen((["taskset", "-c", str(cpus[1])] if pin else []) +
                                  ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)
            procs.append(rp)
            wait_port(rport, rp)
            cmd += ["--redis", f"redis://127.0.0.1:{rport}"]
        else:
            cmd += ["--data-dir", tmp]
        p = subprocess.Popen((["taskset", "-c", server_cpu_set] if pin else []) + cmd, stdout=subprocess.DEVNULL,
                             preexec_fn=die_with_parent)
        procs.append(p)
        wait_port(port, p)
        if pin:
            os.sched_setaffinity(0, client_cpu_set)
        rows = measure(port, pairs, args.connections, scale=args.scale, quiet=args.json)
        for row in rows:
            row["pinned"] = bool(pin)
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        mode = "shared (--redis)" if args.shared else "embedded"
        where = f"server on CPU {server_cpu_set}, client on {cpus[1]}" if pin else "not pinned (fewer than 2 CPUs or no taskset)"
        print(f"Server CPU per question, Sluice {mode}, --threads 1, {where}; median of {pairs} ABBA pairs")
        print(table(rows, args.connections))


if __name__ == "__main__":
    main()
