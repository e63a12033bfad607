"""Operating Sluice: a binary copied alone, structured logs, the HTTP listener (/metrics,
/health, /ready, the dashboard), named policies from a config file."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import conftest
from conftest import SluiceProcess, as_dict, wait_for


def test_binary_copied_alone_starts_and_has_its_embedder_and_lexicon(data_dir):
    # Nothing beside it: no resource bundle. SwiftPM's generated bundle accessor would also
    # find the build folder by its absolute path, which exists on this machine but not on
    # another one, so the test also checks that the binary names no bundle at all.
    alone = tempfile.mkdtemp(prefix="sluice-alone-", dir=data_dir)
    binary = os.path.join(alone, "sluice")
    shutil.copy2(conftest.SLUICE_BIN, binary)
    with open(binary, "rb") as f:
        assert b"_SluiceDomain.resources" not in f.read()
    os.makedirs(os.path.join(alone, "data"))
    saved = conftest.SLUICE_BIN
    conftest.SLUICE_BIN = binary
    try:
        node = SluiceProcess(os.path.join(alone, "data")).start()
    finally:
        conftest.SLUICE_BIN = saved
    try:
        r = node.client()
        assert r.execute_command("SEM.SET", "faq", "How do I reset my password?", "Use the link.") == b"OK"
        # The built-in embedder: a paraphrase hits without a client vector.
        hit = r.execute_command("SEM.GET", "faq", "How can I reset my password?")
        assert hit[0] == b"Use the link."
        # The lexicon: the verifier names the substitution it refused.
        why = r.execute_command("SEM.GET", "faq", "How do I reset my username?", "WHY")
        assert why[0] is None and why[-1] == b"trap: substitution password\xe2\x86\x92username"
        assert "unavailable" not in open(node.log_path).read()
    finally:
        assert node.stop() == 0


def test_log_format_json_writes_one_object_per_line(make_sluice):
    node = make_sluice("--log-format", "json").start()
    node.client().ping()
    assert node.stop() == 0
    lines = [l for l in open(node.log_path).read().splitlines() if l.strip()]
    events = [json.loads(l) for l in lines]  # every line parses
    messages = [e["message"] for e in events]
    assert "sluice listening" in messages and "sluice stopped" in messages
    listening = events[messages.index("sluice listening")]
    assert listening["level"] == "info" and listening["address"].endswith(":%d" % node.port)
    assert all({"ts", "level", "label", "message"} <= e.keys() for e in events)


def test_log_format_other_than_text_or_json_is_refused(data_dir):
    out = subprocess.run([conftest.SLUICE_BIN, "serve", "--log-format", "xml", "--data-dir", data_dir],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0 and "--log-format: 'xml' is not text or json" in out.stderr


def metrics(node, password=None):
    """{(name, frozenset(labels)): value} of every sample /metrics shows."""
    status, headers, body = node.http("/metrics", {"Authorization": "Bearer " + password} if password else None)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        name, _, labels = series.partition("{")
        pairs = frozenset(tuple(p.split("=", 1)) for p in labels.rstrip("}").replace('"', "").split(",") if p)
        samples[(name, pairs)] = float(value)
    return samples


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def test_the_allocators_free_memory_is_reported(make_sluice):
    # Housekeeping looks at the allocator's free memory from its first tick (then every ~10 s)
    # and gives it back past 64 MiB more than last time (unit tests: AllocatorReleasePolicy,
    # AllocatorMemory); here, that what it saw reaches /metrics.
    node = make_sluice().start()
    assert wait_for(lambda: (sample(metrics(node), "sluice_allocator_free_bytes") or 0) > 0, timeout=10, step=0.05) is not None
    assert sample(metrics(node), "sluice_allocator_releases_total") == 0


def test_metrics_count_a_known_sequence_exactly(make_sluice):
    node = make_sluice().start()
    r = node.client()
    # Exact cache: three tagged answers, one untagged.
    r.execute_command("CACHE.SET", "q1", "a1", "TOKENS", "120", "COST", "0.25", "TAG", "gpt-4o")
    r.execute_command("CACHE.SET", "q2", "a2", "TOKENS", "30", "COST", "0.125", "TAG", "gpt-4o")
    r.execute_command("CACHE.SET", "q3", "a3", "TOKENS", "1000", "COST", "2", "TAG", "claude")
    r.execute_command("CACHE.SET", "q4", "a4", "TOKENS", "7")
    for key in ["q1", "q1", "q2", "q3", "q4", "nope", "nope"]:
        r.execute_command("CACHE.GET", key)
    # Semantic: one tagged entry, a paraphrase hit, a trap, a miss in an empty scope.
    r.execute_command("SEM.SET", "faq", "How do I reset my password?", "Use the link.", "TOKENS", "50", "COST", "0.5", "TAG", "agent")
    r.execute_command("SEM.GET", "faq", "How can I reset my password?")
    r.execute_command("SEM.GET", "faq", "How do I reset my username?")
    r.execute_command("SEM.GET", "faq", "How do I reset my password?", "SCOPE", "elsewhere")
    # Limits: capacity 2, three takes.
    for _ in range(3):
        r.execute_command("RL.TAKE", "user:1", "2", "0")
    with pytest.raises(Exception, match="unknown command"):
        r.execute_command("NOSUCHCOMMAND")

    m = metrics(node)
    assert sample(m, "sluice_cache_hits_total", layer="l1") == 5
    assert sample(m, "sluice_cache_misses_total", layer="l1") == 2
    assert sample(m, "sluice_tokens_saved_total", layer="l1", tag="gpt-4o") == 120 * 2 + 30
    assert sample(m, "sluice_cost_saved_total", layer="l1", tag="gpt-4o") == 0.625
    assert sample(m, "sluice_saved_hits_total", layer="l1", tag="gpt-4o") == 3
    assert sample(m, "sluice_tokens_saved_total", layer="l1", tag="claude") == 1000
    assert sample(m, "sluice_cost_saved_total", layer="l1", tag="claude") == 2
    assert sample(m, "sluice_tokens_saved_total", layer="l1", tag="none") == 7
    assert sample(m, "sluice_tokens_saved_total", layer="semantic", tag="agent") == 50
    assert sample(m, "sluice_cost_saved_total", layer="semantic", tag="agent") == 0.5
    assert sample(m, "sluice_cache_hits_total", layer="semantic") == 1
    assert sample(m, "sluice_cache_misses_total", layer="semantic") == 2
    assert sample(m, "sluice_semantic_traps_total", rule="substitution") == 1
    assert sample(m, "sluice_semantic_lookups_total", namespace="faq", result="hit") == 1
    assert sample(m, "sluice_semantic_lookups_total", namespace="faq", result="miss") == 2
    assert sample(m, "sluice_limit_decisions_total", policy="none", decision="allowed") == 2
    assert sample(m, "sluice_limit_decisions_total", policy="none", decision="limited") == 1
    assert sample(m, "sluice_command_duration_seconds_count", command="cache.get") == 7
    assert sample(m, "sluice_command_duration_seconds_count", command="cache.set") == 4
    assert sample(m, "sluice_command_duration_seconds_count", command="rl.take") == 3
    assert sample(m, "sluice_command_duration_seconds_count", command="unknown") == 1
    assert sample(m, "sluice_command_duration_seconds_bucket", command="cache.get", le="+Inf") == 7
    assert sample(m, "sluice_cache_entries", layer="semantic") == 1
    assert sample(m, "sluice_sqlite_up") == 1
    assert sample(m, "sluice_limit_top_refused", key="user:1") == 1
    # The writer commits within its apply window (250 ms), not before the scrape: wait (bounded).
    assert wait_for(lambda: sample(metrics(node), "sluice_sqlite_batches_total") >= 1, 10) is not None
    assert sample(metrics(node), "sluice_sqlite_commit_seconds_total") > 0

    # STATS is a view of the same numbers.
    stats = {k.decode(): v for k, v in as_dict(r.execute_command("STATS")).items()}
    assert stats["l1_hits"] == sample(m, "sluice_cache_hits_total", layer="l1")
    assert stats["tokens_saved"] == 120 * 2 + 30 + 1000 + 7
    assert stats["rl_denied"] == sample(m, "sluice_limit_decisions_total", policy="none", decision="limited")

    # A second scrape moves nothing that did not happen; the next hit moves by one.
    r.execute_command("CACHE.GET", "q3")
    m2 = metrics(node)
    assert sample(m2, "sluice_tokens_saved_total", layer="l1", tag="claude") == 2000
    assert sample(m2, "sluice_tokens_saved_total", layer="l1", tag="gpt-4o") == 270
    assert sample(m2, "sluice_cache_hits_total", layer="l1") == 6


def test_tags_and_worth_survive_a_restart(make_sluice):
    node = make_sluice().start()
    r = node.client()
    r.execute_command("CACHE.SET", "q", "a", "TOKENS", "40", "COST", "0.5", "TAG", "gpt-4o")
    r.execute_command("SEM.SET", "faq", "How do I reset my password?", "x", "TOKENS", "9", "TAG", "agent")
    assert node.stop() == 0
    node.start()
    r = node.client()
    assert r.execute_command("CACHE.GET", "q")[1] == b"l2"
    r.execute_command("SEM.GET", "faq", "How can I reset my password?")
    m = metrics(node)
    assert sample(m, "sluice_tokens_saved_total", layer="l2", tag="gpt-4o") == 40
    assert sample(m, "sluice_cost_saved_total", layer="l2", tag="gpt-4o") == 0.5
    assert sample(m, "sluice_tokens_saved_total", layer="semantic", tag="agent") == 9


def test_tag_is_checked_at_the_edge(sluice):
    r = sluice.client()
    # "none" and "other" are what untagged and unlabelled savings are called: a client taking
    # them would mix its counts into those series.
    for bad in ["", "has space", "x" * 65, 'quo"te', "none", "other", "tab\there"]:
        with pytest.raises(Exception, match="TAG must be 1 to 64 printable ASCII"):
            r.execute_command("CACHE.SET", "k", "v", "TAG", bad)
    with pytest.raises(Exception, match="TAG must be"):
        r.execute_command("SEM.SET", "ns", "p", "r", "TAG", "a b")
    with pytest.raises(Exception, match="COST must be a non-negative number"):
        r.execute_command("SEM.SET", "ns", "p", "r", "COST", "nan")
    with pytest.raises(Exception, match="TOKENS must be at most"):
        r.execute_command("SEM.SET", "ns", "p", "r", "TOKENS", str(10**11))


def test_tags_past_the_label_bound_count_as_other_and_keep_their_names(sluice):
    r = sluice.client()
    for i in range(80):
        r.execute_command("CACHE.SET", f"k{i}", "v", "TOKENS", "1", "TAG", f"tag{i}")
        r.execute_command("CACHE.GET", f"k{i}")
    m = metrics(sluice)
    saved = {dict(labels)["tag"]: v for (name, labels), v in m.items() if name == "sluice_tokens_saved_total"}
    # 64 labels: "none" and "other" are two of them, the first 62 tags the rest.
    assert len(saved) == 63 and saved["other"] == 18
    assert sum(saved.values()) == 80
    assert sorted(t for t in saved if t != "other") == sorted(f"tag{i}" for i in range(62))
    # Scraping again moves nothing.
    assert {dict(l)["tag"]: v for (n, l), v in metrics(sluice).items() if n == "sluice_tokens_saved_total"} == saved


def test_health_turns_503_when_redis_stops_and_200_when_it_is_back(make_sluice, redis_server):
    node = make_sluice("--redis", redis_server.url, "--redis-timeout", "200").start()
    # Healthy once connected and subscribed to invalidations (moments after start).
    assert wait_for(lambda: node.http("/health")[0] == 200, 10) is not None
    status, _, body = node.http("/health")
    assert status == 200 and json.loads(body) == {"status": "ok", "mode": "shared", "backend": "redis"}
    # Ready once the (empty) semantic stream is read too: at once, but on a thread of its own.
    assert wait_for(lambda: node.http("/ready")[0] == 200, 2) is not None
    node.client().set("k", "v")  # a round trip to Redis, timed
    m = metrics(node)
    assert sample(m, "sluice_redis_round_trips_total") >= 1 and sample(m, "sluice_redis_round_trip_seconds_total") > 0
    redis_server.kill()
    # The connection notices on its next command or reconnect attempt.
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            node.client().get("probe")
        except Exception:
            pass
        status, _, body = node.http("/health")
        # The subscription may notice first ("... not subscribed"); the command connection
        # notices on the next command.
        if status == 503 and b"not connected" in body:
            break
        time.sleep(0.05)
    assert status == 503
    assert json.loads(body) == {"status": "unavailable", "mode": "shared", "backend": "redis", "reason": "redis is not connected"}
    m = metrics(node)
    assert sample(m, "sluice_redis_up") == 0
    redis_server.start()
    assert wait_for(lambda: node.http("/health")[0] == 200, 15) is not None
    assert sample(metrics(node), "sluice_redis_up") == 1


def test_http_port_needs_the_password_except_for_probes(make_sluice):
    import base64
    node = make_sluice("--requirepass", "s3cret").start()
    assert node.http("/metrics")[0] == 401
    assert node.http("/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    assert node.http("/metrics", {"Authorization": "Bearer s3cret"})[0] == 200
    basic = base64.b64encode(b"prometheus:s3cret").decode()
    assert node.http("/stats.json", {"Authorization": "Basic " + basic})[0] == 200
    assert node.http("/health")[0] == 200 and node.http("/ready")[0] == 200
    assert node.http("/metrics", {"Authorization": "Bearer s3cret"}, method="POST")[0] == 405
    assert node.http("/nope", {"Authorization": "Bearer s3cret"})[0] == 404
    assert node.http("/", {})[0] == 401 and node.http("/dashboard.json", {})[0] == 401
    # Wrong passwords count as failed AUTH, as on the protocol port (asking without any does not).
    failures = sample(metrics(node, "s3cret"), "sluice_auth_failures_total")
    assert failures == 1  # the one "Bearer wrong" above


POLICIES = """
[server]
port = 1          # the flag given by the test wins
l1-max-memory = "32mb"

[limits."gpt-4o"]
rpm = 3
tpm = 100000

[budgets.team-a]
budget = 10.0
period_ms = 3600000

[limits.shadow]
rpm = 1
dryrun = true

[breakers.openai]
failure_rate = 0.25
open_ms = 5000

[namespaces.faq]
min_score = 0.8
"""


def wait_for_log(node, text, timeout=10):
    return wait_for(lambda: text in open(node.log_path).read(), timeout, step=0.05) is not None


def test_config_file_policies_by_name_flags_override_and_sighup_reload(make_sluice, data_dir):
    path = os.path.join(data_dir, "sluice.toml")
    with open(path, "w") as f:
        f.write(POLICIES)
    node = make_sluice("--config", path).start()  # --port and --http-port come as flags
    r = node.client()
    assert r.ping()  # on the flag's port, not the file's port 1
    info = r.info("memory")
    assert info["maxmemory"] == 32 * 1024 * 1024  # from the file's [server]

    # Policies used by name.
    takes = [r.execute_command("RL.TAKE", "user:1", "POLICY", "gpt-4o")[0] for _ in range(4)]
    assert takes == [1, 1, 1, 0]
    assert r.execute_command("RL.SPEND", "team:a", "4", "POLICY", "team-a")[0] == 1
    assert r.execute_command("RL.SPEND", "team:a", "7", "POLICY", "team-a")[0] == 0
    policy = as_dict(r.execute_command("CB.CONFIG", "openai"))
    assert float(policy[b"failure_rate"]) == 0.25 and policy[b"open_ms"] == 5000
    assert float(as_dict(r.execute_command("SEM.CONFIG", "faq"))[b"min_score"]) == pytest.approx(0.8)
    with pytest.raises(Exception, match="no rate-limit policy named 'nope'"):
        r.execute_command("RL.TAKE", "user:1", "POLICY", "nope")
    m = metrics(node)
    assert sample(m, "sluice_limit_decisions_total", policy="gpt-4o", decision="allowed") == 3
    assert sample(m, "sluice_limit_decisions_total", policy="gpt-4o", decision="limited") == 1
    assert sample(m, "sluice_limit_near_total", policy="gpt-4o") == 1

    # SIGHUP with a changed file: new numbers and a new policy, the connection stays.
    with open(path, "w") as f:
        f.write(POLICIES.replace("rpm = 3", "rpm = 10") + '\n[limits.small]\nrpm = 1\ntpm = 0\n')
    node.proc.send_signal(signal.SIGHUP)
    assert wait_for_log(node, "policies reloaded")
    assert r.execute_command("RL.TAKE", "user:2", "POLICY", "small")[0] == 1
    assert r.execute_command("RL.TAKE", "user:2", "POLICY", "small")[0] == 0
    assert [r.execute_command("RL.TAKE", "user:3", "POLICY", "gpt-4o")[0] for _ in range(10)] == [1] * 10

    # SIGHUP with a broken file: logged, and the policies in force stay.
    with open(path, "w") as f:
        f.write('[limits."gpt-4o"]\nrpm = "lots"\n')
    node.proc.send_signal(signal.SIGHUP)
    assert wait_for_log(node, "config reload failed")
    assert "limits.gpt-4o.rpm must be a whole number" in open(node.log_path).read()
    assert r.execute_command("RL.TAKE", "user:4", "POLICY", "small")[0] == 1
    assert [r.execute_command("RL.TAKE", "user:5", "POLICY", "gpt-4o")[0] for _ in range(10)] == [1] * 10
    assert node.proc.poll() is None and r.ping()
    assert node.stop() == 0


def test_print_config_shows_what_would_run_and_reads_back(data_dir):
    path = os.path.join(data_dir, "sluice.toml")
    with open(path, "w") as f:
        f.write(POLICIES)
    env = {**os.environ, "SLUICE_L1_MAX_MEMORY": "48mb"}
    out = subprocess.run([conftest.SLUICE_BIN, "serve", "--config", path, "--port", "7777", "--print-config"],
                         capture_output=True, text=True, timeout=20, env=env)
    assert out.returncode == 0, out.stderr
    assert "port = 7777\n" in out.stdout  # the flag over the file
    assert f"l1-max-memory = {48 * 1024 * 1024}\n" in out.stdout  # the variable over the file
    assert '[limits."gpt-4o"]\nrpm = 3\ntpm = 100000\n' in out.stdout
    assert '[limits."shadow"]\n' in out.stdout and "dryrun = true\n" in out.stdout
    # What it prints is a config file that gives the same configuration.
    again = os.path.join(data_dir, "printed.toml")
    with open(again, "w") as f:
        f.write(out.stdout)
    out2 = subprocess.run([conftest.SLUICE_BIN, "serve", "--config", again, "--print-config"], capture_output=True, text=True,
                          timeout=20, env={k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")})
    assert out2.returncode == 0 and out2.stdout == out.stdout


def test_config_file_errors_stop_the_start_with_the_reason(data_dir):
    cases = {
        "[server]\nprot = 1\n": "[server] has no setting 'prot'",
        "[limits.x]\nrpm = -1\n": "limits.x.rpm must be between 0 and",
        "[limits.x\n": "sluice.toml:1:",
        "[breakers.b]\nfailure_rate = 2\n": "breakers.b.failure_rate must be above 0 and at most 1",
        "[surprise]\n": "unknown table [surprise]",
        "[budgets.b]\nbudget = 1.0\nperiod_ms = 9223372036854775807\n": "budgets.b.period_ms must be 1 to 10000000000",
        "[limits.x]\nrpm = 10\nrequest_burst = 0\n": "limits.x.request_burst must be at least 1 when rpm is set",
        "[limits.a]\nrpm = 1\n\x00[limits.b]\nrpm = 1\n": "contains a NUL byte",
    }
    path = os.path.join(data_dir, "sluice.toml")
    for text, message in cases.items():
        with open(path, "w") as f:
            f.write(text)
        out = subprocess.run([conftest.SLUICE_BIN, "serve", "--config", path, "--data-dir", data_dir],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode != 0 and message in out.stderr, (text, out.stderr)


def test_breaker_transitions_are_logged_and_counted(make_sluice):
    node = make_sluice("--log-format", "json").start()
    r = node.client()
    assert r.execute_command("CB.ALLOW", "upstream")[0] == 1
    r.execute_command("CB.FORCE", "upstream", "open")
    assert r.execute_command("CB.ALLOW", "upstream")[0] == 0
    m = metrics(node)
    assert sample(m, "sluice_breaker_state", breaker="upstream") == 2
    r.execute_command("CB.FORCE", "upstream", "closed")
    assert r.execute_command("CB.ALLOW", "upstream")[0] == 1
    m = metrics(node)
    assert sample(m, "sluice_breaker_transitions_total", breaker="upstream") == 2
    assert sample(m, "sluice_breaker_state", breaker="upstream") == 0
    events = [json.loads(l) for l in open(node.log_path).read().splitlines() if l.startswith("{")]
    moves = [(e["from"], e["to"]) for e in events if e["message"] == "breaker transition"]
    assert moves == [("closed", "open"), ("open", "closed")]


def test_client_chosen_names_with_control_characters_never_reach_a_label_raw(make_sluice):
    """A breaker or namespace named with CR, NUL or ESC (a client chooses them) is summed under
    breaker/namespace "other": scrapers split on CR, and NUL or ESC in a label breaks tools."""
    node = make_sluice().start()
    r = node.client()
    hostile = [b"a\r\nfake_metric 1\r\nb", b"nul\x00byte", b"esc\x1b[31mred"]
    for name in hostile:
        r.execute_command("CB.ALLOW", name)
        r.execute_command("CB.FORCE", name, "open")
        r.execute_command("SEM.SET", name, "How do I reset my password?", "Use the link.")
        r.execute_command("SEM.GET", name, "How do I reset my password?")
    r.execute_command("CB.ALLOW", "plain")
    status, _, body = node.http("/metrics")
    assert status == 200
    assert not any(b in body for b in (b"\r", b"\x00", b"\x1b")), "a control character reached /metrics"
    assert b"fake_metric" not in body
    m = metrics(node)
    assert sample(m, "sluice_breaker_transitions_total", breaker="other") == len(hostile)
    assert sample(m, "sluice_semantic_lookups_total", namespace="other", result="hit") == len(hostile)
    assert sample(m, "sluice_breaker_state", breaker="plain") == 0


def chromium(args, data_dir, timeout=90):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed (scripts/install-deps.sh --python installs it)")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=data_dir)
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_dashboard_in_headless_chromium_shows_what_stats_says(make_sluice, data_dir):
    import re
    node = make_sluice().start()
    r = node.client()
    r.execute_command("CACHE.SET", "q1", "a1", "TOKENS", "1200", "COST", "0.75", "TAG", "gpt-4o")
    r.execute_command("CACHE.SET", "q2", "a2", "TOKENS", "300", "COST", "0.25", "TAG", "claude")
    for key in ["q1", "q1", "q1", "q2", "missing"]:
        r.execute_command("CACHE.GET", key)
    for _ in range(5):
        r.execute_command("RL.TAKE", "tenant:noisy", "2", "0")
    r.execute_command("RL.SPEND", "team:blue", "8", "10")
    r.execute_command("CB.FORCE", "openai", "open")
    r.execute_command("CB.ALLOW", "openai")
    time.sleep(2.2)  # two samples for the charts (what the screenshot below shows)
    day = time.gmtime().tm_yday

    url = f"http://127.0.0.1:{node.http_port}/"
    out = chromium(["--virtual-time-budget=5000", "--dump-dom", url], data_dir)
    dom = out.stdout
    assert 'data-updated="' in dom, out.stderr[-2000:]
    stats = {k.decode(): v for k, v in as_dict(r.execute_command("STATS")).items()}

    def shown(element_id):
        m = re.search(r'id="%s"[^>]*>([^<]*)<' % re.escape(element_id), dom)
        assert m, element_id
        return m.group(1)

    # The counters table renders STATS's own numbers.
    for name in ["l1_hits", "l1_misses", "keys", "rl_denied", "rl_allowed", "tokens_saved", "cb_breakers"]:
        assert int(shown("stat-" + name)) == stats[name], name
    assert float(shown("stat-cost_saved")) == pytest.approx(float(stats["cost_saved"]))
    # The headline figures agree with them.
    assert shown("tokens-total") == f"{stats['tokens_saved']:,}" == "3,900"
    assert shown("cost-total") == "2.50"
    if time.gmtime().tm_yday == day:  # "today" starts again at UTC midnight
        assert shown("tokens-today") == "3,900"
    assert shown("hit-l1") == "80.0%"  # 4 hits, 1 miss
    assert "tenant:noisy</td><td>3<" in dom  # 3 of 5 takes refused
    assert "team:blue</td><td>8.00</td><td>10.00</td><td>2.00<" in dom
    assert re.search(r"openai</td><td><span class=\"bad\">open</span>", dom)
    assert "gpt-4o</td><td>3</td><td>3,600</td><td>2.25</td>" in dom

    shot = os.path.join(data_dir, "dashboard.png")
    out = chromium(["--virtual-time-budget=5000", "--window-size=1400,1500", f"--screenshot={shot}", url], data_dir)
    assert os.path.getsize(shot) > 20_000, out.stderr[-2000:]
    keep = os.environ.get("SLUICE_DASHBOARD_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_semantic_metrics_stay_monotonic_when_a_namespace_is_dropped_and_made_again(sluice):
    r = sluice.client()
    for ns in ["a", "b"]:
        r.execute_command("SEM.SET", ns, "How do I reset my password?", "x", "TOKENS", "10", "TAG", "t1")
        for _ in range(3):
            r.execute_command("SEM.GET", ns, "How can I reset my password?")
    m = metrics(sluice)
    assert sample(m, "sluice_cache_hits_total", layer="semantic") == 6
    assert sample(m, "sluice_tokens_saved_total", layer="semantic", tag="t1") == 60
    assert r.execute_command("SEM.DEL", "a") == 1  # the whole namespace
    r.execute_command("SEM.SET", "a", "How do I reset my password?", "x", "TOKENS", "10", "TAG", "t1")
    r.execute_command("SEM.GET", "a", "How can I reset my password?")
    m = metrics(sluice)
    for _ in range(2):  # and again: nothing moves without traffic
        assert sample(m, "sluice_cache_hits_total", layer="semantic") == 7
        assert sample(m, "sluice_tokens_saved_total", layer="semantic", tag="t1") == 70
        assert sample(m, "sluice_semantic_lookups_total", namespace="a", result="hit") == 4
        m = metrics(sluice)


def test_http_connections_past_the_bound_are_closed_and_the_node_goes_on(sluice):
    import select
    import socket
    # 129 connections: whichever the server takes last (its two event loops take them side by
    # side, so not always the last one opened) is closed, with nothing written; the rest stay.
    socks = [socket.create_connection(("127.0.0.1", sluice.http_port)) for _ in range(129)]
    try:
        closed = []
        deadline = time.time() + 10
        while not closed and time.time() < deadline:
            readable, _, _ = select.select(socks, [], [], 0.5)
            closed = [s for s in readable if s.recv(100) == b""]
        time.sleep(0.5)  # and no second one
        readable, _, _ = select.select(socks, [], [], 0)
        assert len(closed) + len([s for s in readable if s not in closed]) == 1
        assert sluice.proc.poll() is None and sluice.client().ping()
    finally:
        for s in socks:
            s.close()
    assert wait_for(lambda: sluice.http("/ready")[0] == 200, 5) is not None


def test_http_request_trickled_byte_by_byte_is_closed_at_its_deadline(sluice):
    import socket
    s = socket.create_connection(("127.0.0.1", sluice.http_port), timeout=20)
    start = time.time()
    closed = False
    for ch in b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 100:
        try:
            s.sendall(bytes([ch]))
        except OSError:
            closed = True
            break
        time.sleep(0.2)
        if time.time() - start > 14:
            break
    if not closed:
        s.settimeout(5)
        assert s.recv(100) == b""
    assert 9 <= time.time() - start <= 15


def test_an_sqlite_file_from_before_tags_is_migrated(data_dir):
    import sqlite3
    path = os.path.join(data_dir, "old")
    os.makedirs(path)
    db = sqlite3.connect(os.path.join(path, "sluice.db"))
    db.executescript("""
        CREATE TABLE entries (key BLOB PRIMARY KEY, value BLOB NOT NULL, created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0) WITHOUT ROWID;
        CREATE TABLE sem_entries (ns TEXT NOT NULL, scope TEXT NOT NULL, prompt TEXT NOT NULL, response BLOB NOT NULL,
            embedder TEXT NOT NULL, vector BLOB NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (ns, scope, prompt)) WITHOUT ROWID;
        INSERT INTO entries VALUES (x'6f6c64', x'76', 1700000000000, 0, 5, 0.5);
    """)
    db.commit()
    db.close()
    node = SluiceProcess(path).start()
    try:
        r = node.client()
        assert r.execute_command("CACHE.GET", "old")[0] == b"v"
        r.execute_command("CACHE.SET", "new", "w", "TOKENS", "3", "TAG", "gpt-4o")
        assert node.stop() == 0
        node.start()
        assert node.client().execute_command("CACHE.GET", "new")[:2] == [b"w", b"l2"]
        assert sample(metrics(node), "sluice_tokens_saved_total", layer="l2", tag="gpt-4o") == 3
    finally:
        node.stop()


def established_on(port):
    """Established TCP connections whose local port is `port` (from /proc/net/tcp)."""
    count = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            count += 1
    return count


def test_http_client_that_never_reads_is_closed_not_buffered(sluice):
    import socket
    # 20,000 pipelined /metrics requests, and no reading: the node stops reading when its
    # responses cannot leave, so the 10 s request deadline closes the connection (before the
    # fix, each response re-armed it and the unsent ones grew the node's memory without bound).
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", sluice.http_port))
    s.setblocking(False)
    pending = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 20000
    start = time.time()
    try:
        while time.time() - start < 25:
            if pending:
                try:
                    pending = pending[s.send(pending):]
                except (BlockingIOError, OSError):
                    pass
            if time.time() - start > 2 and established_on(sluice.http_port) == 0:
                break
            time.sleep(0.2)
        assert established_on(sluice.http_port) == 0, "the node still holds the connection"
        assert time.time() - start < 20
        assert sluice.client().ping()
    finally:
        s.close()
