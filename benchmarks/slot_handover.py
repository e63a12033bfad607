"""Shared slots: how long a release on one instance takes to reach a waiter on another.

Starts its own redis-server and two Sluice instances on loopback, runs 200 hand-overs
(holder on A releases; the waiter on B, queued with WAIT, gets the slot), prints percentiles,
then 2,000 RL.SPEND through both instances on one budget and checks it stopped exactly at it.

    python benchmarks/slot_handover.py .build/release/sluice
"""
import subprocess
import sys
import threading
import time

import redis

BIN = sys.argv[1] if len(sys.argv) > 1 else ".build/release/sluice"
REDIS_PORT, PORTS = 7590, (7591, 7592)


def main():
    rs = subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                          stdout=subprocess.DEVNULL)
    procs = []
    try:
        time.sleep(0.3)
        procs = [subprocess.Popen([BIN, "--port", str(p), "--http-port", "0", "--redis", f"redis://127.0.0.1:{REDIS_PORT}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in PORTS]
        for port in PORTS:
            for _ in range(100):
                try:
                    if redis.Redis(port=port).execute_command("STATS")[b"rl_slots_subscribed"] == 1:
                        break
                except redis.ConnectionError:
                    pass
                time.sleep(0.1)
        a, b = (redis.Redis(port=p) for p in PORTS)
        latencies = []
        for _ in range(200):
            _, slot, _, _ = a.execute_command("RL.ACQUIRE", "handover", 1, "LEASE", 60000)
            got = {}

            def wait():
                got["reply"] = b.execute_command("RL.ACQUIRE", "handover", 1, "WAIT", 5000, "LEASE", 60000)
                got["at"] = time.perf_counter()

            t = threading.Thread(target=wait)
            t.start()
            while b.execute_command("STATS")[b"rl_slot_waiters_shared"] != 1:
                time.sleep(0.001)
            released = time.perf_counter()
            a.execute_command("RL.RELEASE", "handover", slot)
            t.join(10)
            assert got["reply"][0] == 1, got
            latencies.append((got["at"] - released) * 1000)
            b.execute_command("RL.RELEASE", "handover", got["reply"][1])
        latencies.sort()
        n = len(latencies)
        print(f"release on A -> grant on B, {n} runs: p50 {latencies[n // 2]:.2f} ms, p90 {latencies[n * 9 // 10]:.2f} ms, "
              f"p99 {latencies[n * 99 // 100]:.2f} ms, max {latencies[-1]:.2f} ms")
        start = time.perf_counter()
        allowed = sum((a if i % 2 else b).execute_command("RL.SPEND", "team", "0.01", "BUDGET", "10")[0] for i in range(2000))
        took = time.perf_counter() - start
        spent = a.execute_command("RL.BUDGET", "team")[0]
        print(f"RL.SPEND through two instances, one client: {took / 2000 * 1e6:.0f} us per call; {allowed} of 2000 allowed, spent {spent!r}")
        assert allowed == 1000
    finally:
        for p in procs:
            p.kill()
        rs.kill()


if __name__ == "__main__":
    main()
