#!/usr/bin/env python3
"""A burst of clients that ask for a large answer and go without reading it: how much memory the
server takes, and whether it gives it back (docs/DECISIONS.md, "A burst of large answers for
clients that have gone").

Stores a 3 MB answer with LLM.SET, then for --seconds opens connection after connection, each
pipelining 20 LLM.GETs of it and closing unread. Samples the server's RSS (from /proc, so run it
on the server's machine) every half second until it answers PING quickly again and its RSS has
stopped falling, or --wait seconds. WARNING: with --seconds 1 the server's peak is gigabytes.

    .build/release/sluice serve --port 7470 --data-dir /tmp/burst --l1-max-memory 1mb &
    python3 benchmarks/large_reply_burst.py --port 7470 --pid $! --seconds 0.3
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_redis import resp_command as command  # noqa: E402


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def ping_seconds(port, timeout=2.0):
    start = time.time()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            s.recv(16)
        return time.time() - start
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=7470)
    ap.add_argument("--pid", type=int, required=True, help="the server's process id (for its RSS)")
    ap.add_argument("--seconds", type=float, default=0.3, help="how long to open connections (at most 2)")
    ap.add_argument("--size", type=int, default=3_000_000, help="the answer's bytes (at most 16 MB)")
    ap.add_argument("--wait", type=float, default=90, help="most seconds to watch the server afterwards")
    args = ap.parse_args()
    seconds, size = min(args.seconds, 2.0), min(args.size, 16_000_000)
    with socket.create_connection(("127.0.0.1", args.port)) as s:
        s.sendall(command("LLM.SET", "burst", "big", b"A" * size))
        s.recv(100)
    before = rss_mb(args.pid)
    burst = command("LLM.GET", "burst", "big") * 20
    start, opened = time.time(), 0
    while time.time() - start < seconds:
        with socket.create_connection(("127.0.0.1", args.port)) as s:
            s.sendall(burst)
        opened += 1
    peak, last, settled, waited = before, before, 0, time.time()
    while time.time() - waited < args.wait:
        time.sleep(0.5)
        now = rss_mb(args.pid)
        peak = max(peak, now)
        ping = ping_seconds(args.port)
        settled = settled + 1 if ping is not None and ping < 0.05 and now >= last - 1 else 0
        last = now
        if settled >= 4:
            break
    print(f"connections {opened}, RSS before {before} MB, peak {peak} MB, after {last} MB, "
          f"answering again after {time.time() - waited:.1f} s")


if __name__ == "__main__":
    main()
