#!/usr/bin/env python3
"""What `kill -9` loses: writers SET distinct keys as fast as they can for a while, the server is
killed with SIGKILL, restarted on the same data directory, and every acknowledged key is read
back. Prints acknowledged and lost writes per --fsync policy.

    swift build -c release
    python3 benchmarks/durability.py --seconds 10 --writers 8 --fsync everysec always no

Only 127.0.0.1 is contacted; each run is bounded by --seconds.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, port, data, fsync):
    proc = subprocess.Popen([binary, "serve", "--port", str(port), "--data-dir", data, "--fsync", fsync, "--log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sluice did not start")


def writer(port, prefix, deadline, acked, pipeline=64):
    """Pipelines SETs; records each key whose +OK came back."""
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""
    i = 0
    try:
        while time.time() < deadline:
            keys = [f"{prefix}:{i + j}" for j in range(pipeline)]
            i += pipeline
            s.sendall(b"".join(b"SET %s v%s\r\n" % (k.encode(), k.encode()) for k in keys))
            got = 0
            while got < len(keys):
                while b"\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                line, buf = buf.split(b"\r\n", 1)
                if line == b"+OK":
                    acked.append(keys[got])
                got += 1
    except OSError:
        return
    finally:
        s.close()


def read_back(port, keys):
    lost = 0
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for at in range(0, len(keys), 500):
        chunk_keys = keys[at:at + 500]
        s.sendall(b"".join(b"EXISTS %s\r\n" % k.encode() for k in chunk_keys))
        got = 0
        while got < len(chunk_keys):
            while b"\r\n" not in buf:
                buf += s.recv(65536)
            line, buf = buf.split(b"\r\n", 1)
            if line != b":1":
                lost += 1
            got += 1
    s.close()
    return lost


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--fsync", nargs="+", default=["everysec"])
    ap.add_argument("--sluice", default=os.path.join(ROOT, ".build", "release", "sluice"))
    opts = ap.parse_args()
    print(f"{'fsync':>9} {'acked':>9} {'lost':>7} {'acked/s':>9}")
    for policy in opts.fsync:
        data = tempfile.mkdtemp(prefix="sluice-durability-")
        port = free_port()
        try:
            proc = start(opts.sluice, port, data, policy)
            acked = []
            deadline = time.time() + opts.seconds
            threads = [threading.Thread(target=writer, args=(port, f"w{n}", deadline, acked)) for n in range(opts.writers)]
            for t in threads:
                t.start()
            time.sleep(opts.seconds)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            for t in threads:
                t.join()
            proc = start(opts.sluice, port, data, policy)
            lost = read_back(port, list(acked))
            proc.terminate()
            proc.wait(timeout=15)
            print(f"{policy:>9} {len(acked):>9} {lost:>7} {len(acked) / opts.seconds:>9.0f}", flush=True)
        finally:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
