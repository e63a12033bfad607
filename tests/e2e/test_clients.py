"""Unmodified Redis clients against Sluice: redis-py, redis-cli, redis-benchmark."""
import subprocess

import pexpect
import pytest
import redis

from conftest import as_dict


def test_redis_py_get_set_and_options(sluice, protocol):
    r = sluice.client(protocol=protocol)
    assert r.ping() is True
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == b"hello"
    assert r.set("greeting", "again", nx=True) is None
    assert r.set("absent", "x", xx=True) is None
    assert r.set("short", "v", px=5000) is True
    assert 0 < r.pttl("short") <= 5000
    assert r.ttl("greeting") == -1
    assert r.ttl("nothing") == -2
    assert r.exists("greeting", "short", "nothing") == 2
    assert r.delete("greeting", "nothing") == 1
    assert r.get("greeting") is None


def test_redis_py_binary_values_and_pipeline(sluice, protocol):
    r = sluice.client(protocol=protocol)
    blob = bytes(range(256)) * 64 + b"\r\n\x00"
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"k{i}", blob + str(i).encode())
    for i in range(200):
        pipe.get(f"k{i}")
    replies = pipe.execute()
    assert replies[:200] == [True] * 200
    assert replies[200:] == [blob + str(i).encode() for i in range(200)]


def test_redis_py_execute_command_rich_cache(sluice, protocol):
    r = sluice.client(protocol=protocol)
    value, layer, age, token = r.execute_command("CACHE.GET", "prompt:1", "LEASE", "30000")
    assert (value, layer, age) == (None, None, None) and token is not None
    assert r.execute_command("CACHE.GET", "prompt:1", "LEASE", "30000") == [None, None, None, None]
    assert r.execute_command("CACHE.SET", "prompt:1", "answer", "TOKENS", "321", "COST", "0.01", "LEASE", token) == b"OK"
    value, layer, age, token = r.execute_command("CACHE.GET", "prompt:1")
    assert (value, layer, token) == (b"answer", b"l1", None) and age >= 0
    stats = as_dict(r.execute_command("STATS"))
    assert int(stats[b"tokens_saved"]) == 321


def test_redis_py_errors_are_exceptions_and_connection_survives(sluice, protocol):
    r = sluice.client(protocol=protocol)
    r.set("keep", "me")
    for bad in [("SET", "k"), ("SET", "k", "v", "EX", "nope"), ("FROB",), ("SEM.GET", "ns"), ("RL.TAKE", "k", "x", "1"), ("GET",)]:
        with pytest.raises(redis.ResponseError):
            r.execute_command(*bad)
    assert r.get("keep") == b"me"


def test_redis_cli_one_shot_commands(sluice):
    def cli(*args, stdin=None):
        return subprocess.run(["redis-cli", "-p", str(sluice.port), *args], input=stdin,
                              capture_output=True, text=True, timeout=20).stdout

    assert cli("PING").strip() == "PONG"
    assert cli("SET", "cli:k", "some value").strip() == "OK"
    assert cli("GET", "cli:k").strip() == "some value"
    assert cli("--no-raw", "GET", "cli:none").strip() == "(nil)"
    # Commands piped on stdin (redis-cli's pipe-like mode).
    out = cli(stdin="SET a 1\nGET a\nDEL a\n")
    assert out.split() == ["OK", "1", "1"]
    assert "ERR unknown command" in cli("FROB")


def test_redis_cli_interactive_session(sluice):
    """redis-cli in a terminal: it sends COMMAND DOCS on connect and shows hints."""
    child = pexpect.spawn("redis-cli", ["-p", str(sluice.port)], timeout=10, encoding="utf-8",
                          dimensions=(40, 200))

    def enter(line):
        child.send(line + "\r")  # linenoise reads Enter as CR in raw mode

    prompt = f"127.0.0.1:{sluice.port}> "
    child.expect_exact(prompt)
    enter('SET "interactive key" "a value"')
    child.expect_exact("OK")
    child.expect_exact(prompt)
    enter('GET "interactive key"')
    child.expect_exact('"a value"')
    child.expect_exact(prompt)
    enter("GET")
    child.expect_exact("(error) ERR wrong number of arguments for 'get' command")
    child.expect_exact(prompt)
    enter("QUIT")
    child.expect(pexpect.EOF)


def test_redis_benchmark_ping_get_set(sluice):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(sluice.port), "-t", "ping,get,set", "-n", "20000", "-c", "20", "-P", "8", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout.replace("\r", "\n")
    for test in ["PING_INLINE", "PING_MBULK", "SET", "GET"]:
        assert any(line.startswith(test + ":") and "requests per second" in line for line in text.splitlines()), text


def test_same_replies_as_redis(sluice, real_redis, protocol):
    """The Redis-shaped commands answer exactly as a real redis-server does."""
    script = [
        ("SET", "a", "1"), ("GET", "a"), ("SET", "a", "2", "NX"), ("SET", "b", "x", "XX"),
        ("SET", "c", "v", "EX", "100"), ("TTL", "c"), ("TTL", "a"), ("TTL", "zz"), ("PTTL", "zz"),
        ("EXISTS", "a", "a", "zz"), ("DEL", "a", "zz"), ("GET", "a"), ("SET", "e", ""), ("GET", "e"),
        ("ECHO", "hi"), ("PING",), ("PING", "msg"), ("SELECT", "0"),
    ]
    ours, theirs = sluice.client(protocol=protocol), real_redis
    for cmd in script:
        assert ours.execute_command(*cmd) == theirs.execute_command(*cmd), cmd
    for bad in [("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "x"), ("SET", "k", "v", "NX", "XX"), ("GET",)]:
        with pytest.raises(redis.ResponseError) as ours_err:
            ours.execute_command(*bad)
        with pytest.raises(redis.ResponseError) as theirs_err:
            theirs.execute_command(*bad)
        assert str(ours_err.value) == str(theirs_err.value), bad
