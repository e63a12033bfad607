"""`sluice bench`, the load generator, against a real Sluice and a real redis-server: every run
bounded by a request count or a duration. Its figures against redis-benchmark's are compared in
benchmarks/run.sh, not here (a timed assertion would only test the machine's noise)."""
import json
import subprocess
import time

from conftest import SLUICE_BIN, as_dict


def bench(port, *args, timeout=120):
    out = subprocess.run([SLUICE_BIN, "bench", "-p", str(port), "--quiet", "--json", *args],
                         capture_output=True, text=True, timeout=timeout)
    return out


def report(port, *args):
    out = bench(port, *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_counts_exactly_the_requests_asked_and_stores_what_it_sets(sluice):
    r = report(sluice.port, "-t", "set,get", "-n", "5003", "-c", "7", "-P", "16", "-r", "500", "-d", "40")
    assert [x["commands"][0]["command"] for x in r] == ["SET", "GET"]
    for run in r:
        assert run["requests"] == 5003
        assert run["errors"] == 0
        figures = run["commands"][0]
        assert 0 < figures["p50"] <= figures["p99"] <= figures["p999"] <= figures["max"]
        assert run["opsPerSecond"] > 0
    c = sluice.client()
    # Keys are redis-benchmark's: key:<12 digits>; values are the asked size.
    hits = sum(1 for i in range(500) if c.get(f"key:{i:012d}") is not None)
    assert hits > 400  # 5003 uniform draws over 500 keys leave almost none unwritten
    assert len(c.get(next(f"key:{i:012d}" for i in range(500) if c.get(f"key:{i:012d}")))) == 40


def test_prefill_writes_every_key_and_a_mix_splits_by_weight(sluice):
    r = report(sluice.port, "--mix", "get=3,cache.get=1", "--prefill", "-r", "300", "-n", "8000", "-c", "4", "-P", "8")
    c = sluice.client()
    assert all(c.get(f"key:{i:012d}") is not None for i in range(300))
    counts = {x["command"]: x["requests"] for x in r["commands"]}
    assert counts["GET"] + counts["CACHE.GET"] == 8000
    # 3:1 within a wide margin (seeded, so this is the same every run).
    assert 5400 < counts["GET"] < 6600
    assert r["errors"] == 0


def test_rounds_pair_the_commands_and_prefill_writes_what_each_reads(sluice):
    # -t cache.get,llm.get --prefill: SET fills what CACHE.GET reads, LLM.SET what LLM.GET reads,
    # so every measured request is a hit; --rounds runs the list in turn and pairs the rates.
    r = report(sluice.port, "-t", "cache.get,llm.get,sem.get", "--prefill", "--rounds", "3", "-r", "40", "-n", "600", "-c", "3", "-P", "4")
    runs, comparison = r["runs"], r["comparison"]
    # Every other round runs the list backwards, so that no command is always the one run second.
    order = ["CACHE.GET", "LLM.GET", "SEM.GET"]
    assert [x["commands"][0]["command"] for x in runs] == order + order[::-1] + order
    assert all(x["requests"] == 600 and x["errors"] == 0 for x in runs)
    rows = {row["command"]: row for row in comparison["rows"]}
    assert list(rows) == ["cache.get", "llm.get", "sem.get"]
    assert rows["cache.get"]["medianRatio"] == 1.0
    for row in rows.values():
        assert row["rounds"] == 3 and row["minRatio"] <= row["medianRatio"] <= row["maxRatio"]
        assert row["minOpsPerSecond"] <= row["medianOpsPerSecond"] <= row["maxOpsPerSecond"]
    # Each paired ratio is that round's own (whatever the order it ran in): recomputed from the runs.
    def run_of(round_, command):
        return next(x for x in runs[3 * round_:3 * round_ + 3] if x["commands"][0]["command"] == command)
    for command in ("LLM.GET", "SEM.GET"):
        ratios = sorted(run_of(i, command)["opsPerSecond"] / run_of(i, "CACHE.GET")["opsPerSecond"] for i in range(3))
        assert abs(rows[command.lower()]["medianRatio"] - ratios[1]) < 1e-9

        def cpu(run):
            return run["serverCPUSeconds"] * 1e6 / run["requests"]
        cpu_ratios = sorted(cpu(run_of(i, command)) / cpu(run_of(i, "CACHE.GET")) for i in range(3) if cpu(run_of(i, "CACHE.GET")) > 0)
        if len(cpu_ratios) == 3:
            assert abs(rows[command.lower()]["medianServerRatio"] - cpu_ratios[1]) < 1e-6
    # The server's CPU around each run (INFO cpu), compared by round as the rates are.
    assert all(x["serverCPUSeconds"] >= 0 for x in runs)
    assert rows["cache.get"]["medianServerRatio"] == 1.0 and rows["llm.get"]["medianServerMicroseconds"] > 0
    stats = as_dict(sluice.client().execute_command("STATS"))
    assert stats[b"llm_hits_l1"] == 1800 and stats[b"llm_misses"] == 0 and stats[b"llm_sets"] == 40
    # The text form ends with the paired table; --rounds without -t is refused.
    text = subprocess.run([SLUICE_BIN, "bench", "-p", str(sluice.port), "--quiet", "-t", "ping,get", "--rounds", "2", "-n", "100"],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "vs ping (median)" in text.stdout and "paired by round" in text.stdout
    refused = bench(sluice.port, "--mix", "get", "--rounds", "2")
    assert refused.returncode != 0 and "--rounds takes -t" in refused.stderr


def test_server_cpu_is_read_from_info_cpu_of_redis_too(redis_server, sluice):
    # INFO cpu as Redis writes it: both servers answer it, and the run reports the difference.
    info = sluice.client().info("cpu")
    # (User and system time are split by tick sampling: only their sum is sure to have grown.)
    assert info["used_cpu_user"] + info["used_cpu_sys"] > 0 and "used_cpu_user_children" in info
    # Several sections at once, and "default", as Redis 7.
    two = sluice.client().info("server", "CPU")
    assert "redis_version" in two and "used_cpu_user" in two and "total_commands_processed" not in two
    assert "total_commands_processed" in sluice.client().info("default")
    r = report(redis_server.port, "-t", "get", "-n", "3000", "-c", "2")
    assert r["serverCPUSeconds"] >= 0
    text = subprocess.run([SLUICE_BIN, "bench", "-p", str(redis_server.port), "--quiet", "-t", "get", "-n", "3000"],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "µs per request (INFO cpu)" in text.stdout


def test_sluice_commands_in_the_mix(sluice):
    r = report(sluice.port, "--mix", "rl.take=1,cb.allow=1,sem.set=1,sem.get=1,cache.set=1,ping=1", "-n", "3000", "-r", "50", "-c", "3")
    assert r["errors"] == 0, r.get("firstError")
    assert sum(x["requests"] for x in r["commands"]) == 3000


def test_error_replies_are_counted_with_the_first_one_shown(redis_server):
    # Redis does not speak CACHE.GET: every request is an error reply, and the run still ends.
    r = report(redis_server.port, "--mix", "cache.get", "-n", "200", "-c", "2")
    assert r["errors"] == 200
    assert "unknown command" in r["firstError"].lower()


def test_a_duration_bounds_the_run(sluice):
    started = time.monotonic()
    r = report(sluice.port, "--duration", "1", "-t", "ping", "-c", "2")
    took = time.monotonic() - started
    assert r["requests"] > 0
    assert took < 15


def test_password_and_refusals(make_sluice):
    s = make_sluice("--requirepass", "s3cret").start()
    authed = report(s.port, "-n", "100", "--auth", "s3cret")
    assert authed["errors"] == 0 and authed["serverCPUSeconds"] >= 0  # INFO cpu asked after AUTH
    out = bench(s.port, "-n", "100", "--auth", "wrong")
    assert out.returncode != 0 and "AUTH refused" in out.stderr
    # Unbounded or out-of-range plans are refused before any connection (the server is up, so
    # a refusal here is the validation's).
    for bad, why in ((["--pipeline", "0"], "--pipeline"), (["-c", "100000"], "--clients"), (["--mix", "flushall"], "--mix"),
                     (["--duration", "inf", "-n", "5"], "--duration"), (["-P", "10000", "-d", "1000000"], "--pipeline"),
                     (["--mix", "get,get"], "--mix")):
        out = bench(s.port, "--auth", "s3cret", *bad, timeout=30)
        assert out.returncode != 0 and why in out.stderr, (bad, out.stderr)
    # Nothing listening: a clear error, not a hang.
    s.stop()
    out = bench(s.port, "-n", "100", timeout=30)
    assert out.returncode != 0 and "cannot connect" in out.stderr


def test_a_server_that_stops_answering_fails_the_run_instead_of_hanging():
    # A listener that accepts and never replies (a real socket; no server can be made to do
    # this on demand, so a bare one stands in for a hung Sluice).
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        started = time.monotonic()
        out = bench(listener.getsockname()[1], "-n", "100", "-c", "2", "--timeout", "1", timeout=60)
        assert out.returncode != 0 and "no reply for 1 s" in out.stderr, out.stderr
        assert time.monotonic() - started < 30
    finally:
        listener.close()
