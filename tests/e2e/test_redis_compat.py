"""Redis compatibility: the same seeded random command sequences sent to Sluice and to a real
redis-server give the same replies (values, integers, errors; TTLs within a second), in the
embedded mode and in shared mode; SCAN keeps Redis's promise while keys change; FLUSHDB needs
--allow-flush; hashes and counters persist like any entry."""
import random
import time

import pytest
import redis

from conftest import RedisServerProcess, as_dict, wait_for

KEYS = [f"k{i}" for i in range(6)] + ["h0", "h1", "{tag}x", ""]
VALUES = ["0", "1", "-5", "01", "+3", " 4", "10", "9223372036854775807", "-9223372036854775808", "abc", "", "1.5",
          "-0.25", "1e3", "3.0", "inf", "0x10", "héllo"]
FIELDS = ["f0", "f1", "f2", ""]
INTS = ["1", "-1", "5", "0", "-9223372036854775808", "9223372036854775807", "x", "01", "100"]
FLOATS = ["0.1", "-1.5", "2", "1e308", "abc", "3.0e1", " 1", "inf"]


def random_command(rng, now_s):
    k = rng.choice(KEYS)
    v = rng.choice(VALUES)
    pick = rng.randrange(40)
    if pick < 4:
        args = ["SET", k, v]
        if rng.random() < 0.3:
            args += rng.choice([["EX", "1000"], ["PX", "500000"], ["EXAT", str(now_s + 1000)], ["PXAT", str((now_s + 900) * 1000)],
                                ["KEEPTTL"], ["EX", "0"], ["EX", "-3"], ["EXAT", "1"], ["PX", "x"]])
        if rng.random() < 0.3:
            args.append(rng.choice(["NX", "XX"]))
        if rng.random() < 0.3:
            args.append("GET")
        if rng.random() < 0.05:
            args.append("BOGUS")
        return args
    if pick < 7:
        return ["GET", k]
    if pick == 7:
        return ["GETDEL", k]
    if pick == 8:
        return ["GETEX", k] + rng.choice([[], ["EX", "2000"], ["PX", "300000"], ["PERSIST"], ["EXAT", "1"], ["EX", "0"], ["PX", "5", "EX", "5"]])
    if pick == 9:
        return ["SETNX", k, v]
    if pick == 10:
        return ["SETEX", k, rng.choice(["1000", "0", "-1", "x"]), v]
    if pick == 11:
        return ["PSETEX", k, rng.choice(["900000", "0"]), v]
    if pick == 12:
        return ["MGET"] + rng.sample(KEYS, 3)
    if pick == 13:
        ks = rng.sample(KEYS, 2)
        return ["MSET", ks[0], v, ks[1], rng.choice(VALUES)]
    if pick == 14:
        return ["APPEND", k, v]
    if pick == 15:
        return ["STRLEN", k]
    if pick in (16, 17):
        return [rng.choice(["INCR", "DECR"]), k]
    if pick in (18, 19):
        return [rng.choice(["INCRBY", "DECRBY"]), k, rng.choice(INTS)]
    if pick == 20:
        return ["INCRBYFLOAT", k, rng.choice(FLOATS)]
    if pick == 21:
        return [rng.choice(["EXISTS", "DEL", "UNLINK"])] + rng.sample(KEYS, 2)
    if pick == 22:
        return ["TYPE", k]
    if pick in (23, 24):
        cmd = rng.choice(["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"])
        amount = {"EXPIRE": rng.choice(["100", "5000", "-1", "0", "x", "9223372036854775807"]),
                  "PEXPIRE": rng.choice(["200000", "-5", "9223372036854775807"]),
                  "EXPIREAT": rng.choice([str(now_s + 3000), "1", str(now_s + 100)]),
                  "PEXPIREAT": rng.choice([str((now_s + 4000) * 1000), "1000"])}[cmd]
        opts = rng.choice([[], [], ["NX"], ["XX"], ["GT"], ["LT"], ["NX", "XX"], ["GT", "LT"], ["FOO"]])
        return [cmd, k, amount] + opts
    if pick == 25:
        return ["PERSIST", k]
    if pick == 26:
        return [rng.choice(["TTL", "PTTL"]), k]
    if pick in (27, 28, 29):
        pairs = []
        for _ in range(rng.randint(1, 3)):
            pairs += [rng.choice(FIELDS), rng.choice(VALUES)]
        if rng.random() < 0.05:
            pairs.append("odd")
        return [rng.choice(["HSET", "HMSET"]), k] + pairs
    if pick == 30:
        return ["HSETNX", k, rng.choice(FIELDS), v]
    if pick == 31:
        return ["HGET", k, rng.choice(FIELDS)]
    if pick == 32:
        return ["HMGET", k] + rng.sample(FIELDS, 2)
    if pick == 33:
        return ["HGETALL", k]
    if pick == 34:
        return ["HDEL", k] + rng.sample(FIELDS, rng.randint(1, 3))
    if pick == 35:
        return [rng.choice(["HEXISTS"]), k, rng.choice(FIELDS)]
    if pick == 36:
        return [rng.choice(["HLEN", "HKEYS", "HVALS"]), k]
    if pick == 37:
        return ["INCRBY", k, rng.choice(INTS)]
    if pick == 38:
        return ["SET", k, rng.choice(["1", "41", "-7", "2.5"])]
    return ["GET", k]


def reply(client, args):
    try:
        return ("ok", client.execute_command(*args))
    except redis.ResponseError as e:
        return ("error", str(e))


def same(args, ours, theirs):
    if ours == theirs:
        return True
    cmd = args[0].upper()
    # Expiries are computed from two clocks a moment apart.
    if cmd in ("TTL", "PTTL") and ours[0] == theirs[0] == "ok" and isinstance(ours[1], int) and ours[1] >= 0 and theirs[1] >= 0:
        return abs(ours[1] - theirs[1]) <= (1 if cmd == "TTL" else 1000)
    return False


def compare_sequences(ours, theirs, seed, count):
    rng = random.Random(seed)
    now_s = int(time.time())
    mismatches = []
    for i in range(count):
        args = random_command(rng, now_s)
        a, b = reply(ours, args), reply(theirs, args)
        if not same(args, a, b):
            mismatches.append((i, args, a, b))
            if len(mismatches) >= 5:
                break
    assert not mismatches, f"seed {seed}: " + "\n".join(f"#{i} {args}: sluice {a} redis {b}" for i, args, a, b in mismatches)
    # The end states agree too: the same keys, of the same types, with the same contents.
    keys_ours = sorted(ours.keys("*"))
    keys_theirs = sorted(theirs.keys("*"))
    assert keys_ours == keys_theirs
    for key in keys_ours:
        assert ours.type(key) == theirs.type(key), key
        if ours.type(key) == b"hash":
            assert ours.hgetall(key) == theirs.hgetall(key), key
        else:
            assert ours.get(key) == theirs.get(key), key


@pytest.fixture
def reference(data_dir):
    r = RedisServerProcess(data_dir).start()
    yield redis.Redis(host="127.0.0.1", port=r.port, socket_timeout=10)
    r.kill()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_replies_as_redis_embedded(make_sluice, reference, seed):
    ours = make_sluice().start().client()
    compare_sequences(ours, reference, seed, 1500)


def test_same_replies_as_redis_with_values_only_the_file_holds(make_sluice, reference):
    """An L1 too small for the keys: the read-modify-writes read values back from the file
    first (the slow path), and still answer as Redis."""
    node = make_sluice("--l1-max-memory", "1").start()
    ours = node.client()
    compare_sequences(ours, reference, 6, 1500)
    stats = as_dict(ours.execute_command("STATS"))
    assert stats[b"l2_hits"] > 0, "nothing was read back from the file"


def test_pipelined_requests_after_a_slow_read_modify_write_keep_their_order(make_sluice):
    """A GETDEL / INCR that must read the file first, then a SET / DEL / GET sent right after
    it on the same connection: the later ones see its effect, as in Redis."""
    node = make_sluice("--l1-max-memory", "1").start()
    c = node.client()
    for round_ in range(50):
        c.set(f"p{round_}", "41")
        c.set(f"q{round_}", "7")
    # A restart: every value is in the file, none still queued (those answer without a read).
    node.stop()
    node.start()
    c = node.client()
    for round_ in range(50):
        pipe = c.pipeline(transaction=False)
        pipe.getdel(f"p{round_}").set(f"p{round_}", "new").get(f"p{round_}")
        pipe.incr(f"q{round_}").delete(f"q{round_}").exists(f"q{round_}")
        assert pipe.execute() == [b"41", True, b"new", 8, 1, 0]
        assert c.get(f"p{round_}") == b"new"


@pytest.mark.parametrize("seed", [4, 5])
def test_same_replies_as_redis_shared(make_sluice, redis_server, reference, seed):
    node = make_sluice("--redis", redis_server.url).start()
    ours = node.client()
    assert wait_for(lambda: as_dict(ours.execute_command("STATS")).get(b"l2_redis_subscribed") == 1, 5) is not None
    compare_sequences(ours, reference, seed, 1500)


def test_counters_and_hashes_survive_a_restart(make_sluice):
    node = make_sluice().start()
    c = node.client()
    c.set("n", "10")
    assert c.incrby("n", 5) == 15
    assert c.hset("h", mapping={"a": "1", "b": "2"}) == 2
    c.expire("h", 1000)
    node.stop()
    node.start()
    c = node.client()
    assert c.get("n") == b"15"
    assert c.incr("n") == 16
    assert c.type("h") == b"hash"
    assert c.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert 990 <= c.ttl("h") <= 1000
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.get("h")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        c.execute_command("CACHE.GET", "h")


def test_concurrent_increments_are_atomic(make_sluice, redis_server):
    """INCR from many connections at once loses nothing: decided under the shard lock (embedded),
    by Redis (shared, two instances)."""
    import threading
    embedded = make_sluice().start()
    a = make_sluice("--redis", redis_server.url).start()
    b = make_sluice("--redis", redis_server.url).start()
    for targets in ([embedded, embedded], [a, b]):
        targets[0].client().set("counter", "0")

        def work(i, targets=targets):
            c = targets[i % 2].client()
            for _ in range(200):
                c.incr("counter")
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert targets[0].client().get("counter") == b"1600"
        assert targets[1].client().get("counter") == b"1600"


def full_scan(client, count, between=None):
    seen = []
    cursor = 0
    pages = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, count=count)
        seen += keys
        pages += 1
        if between:
            between(pages)
        if cursor == 0:
            return seen, pages


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_scan_returns_every_key_present_throughout_while_keys_change(make_sluice, redis_server, mode):
    node = make_sluice(*(["--redis", redis_server.url] if mode == "shared" else [])).start()
    c = node.client()
    pipe = c.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"stay:{i}", i)
    for i in range(500):
        pipe.set(f"go:{i}", i)
    pipe.execute()
    rng = random.Random(7)

    def churn(page):
        # Between pages: new keys come, short-lived ones go, kept ones are overwritten.
        p = c.pipeline(transaction=False)
        for _ in range(20):
            p.set(f"new:{page}:{rng.randrange(1000)}", "x")
            p.delete(f"go:{rng.randrange(500)}")
            p.set(f"stay:{rng.randrange(3000)}", "again")
        p.execute()

    seen, pages = full_scan(c, 50, churn)
    stay = {f"stay:{i}".encode() for i in range(3000)}
    assert stay <= set(seen), f"missing {len(stay - set(seen))} keys present for the whole iteration"
    assert pages > 10
    if mode == "embedded":
        # Walked in key order, so nothing comes back twice.
        assert len(seen) == len(set(seen))
    # MATCH filters, TYPE too.
    c.hset("hash:1", "f", "v")
    keys = set()
    cursor = 0
    while True:
        cursor, page = c.scan(cursor=cursor, match="stay:1?", count=500)
        keys |= set(page)
        if cursor == 0:
            break
    assert keys == {f"stay:{i}".encode() for i in range(10, 20)}
    hashes = set(c.scan_iter(count=500, _type="hash"))
    assert hashes == {b"hash:1"}
    assert sorted(c.keys("stay:2?")) == sorted(f"stay:{i}".encode() for i in range(20, 30))


def test_scan_cursor_errors(make_sluice):
    c = make_sluice().start().client()
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        c.execute_command("SCAN", "abc")
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        c.execute_command("SCAN", "12345")  # never given
    with pytest.raises(redis.ResponseError, match="syntax error"):
        c.execute_command("SCAN", "0", "COUNT", "0")


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_flushdb_needs_the_flag_and_then_empties_the_cache(make_sluice, redis_server, mode):
    shared = ["--redis", redis_server.url] if mode == "shared" else []
    guarded = make_sluice(*shared).start().client()
    guarded.set("keep", "1")
    for command in ("FLUSHDB", "FLUSHALL"):
        with pytest.raises(redis.ResponseError, match="--allow-flush"):
            guarded.execute_command(command)
    assert guarded.get("keep") == b"1"
    node = make_sluice(*shared, "--allow-flush").start()
    c = node.client()
    for i in range(2500):
        c.set(f"k{i}", "v")
    c.hset("h", "f", "v")
    c.get("k1")  # in L1
    assert c.flushdb(asynchronous=True) is True
    assert c.keys("*") == []
    assert c.get("k1") is None
    if mode == "shared":
        # The other instance's L1 copy is gone too.
        assert wait_for(lambda: guarded.get("keep") is None, 2) is not None
    else:
        # Gone from the file as well.
        node.stop()
        node.start()
        assert node.client().dbsize() == 0


def test_command_docs_list_the_new_commands(make_sluice):
    import subprocess
    node = make_sluice().start()
    # redis-cli, as a user's shell would (redis-py's COMMAND parser expects COMMAND's own shape).
    names = set(subprocess.run(["redis-cli", "-p", str(node.port), "COMMAND", "LIST"], capture_output=True, text=True, timeout=10).stdout.split())
    docs = subprocess.run(["redis-cli", "-p", str(node.port), "COMMAND", "DOCS", "hset"], capture_output=True, text=True, timeout=10).stdout
    assert "HSET key field value" in docs
    for name in ["mget", "mset", "setex", "psetex", "setnx", "expire", "pexpire", "expireat", "persist", "incr", "incrby",
                 "decr", "getdel", "getex", "append", "strlen", "unlink", "type", "scan", "keys", "flushdb", "hset", "hget",
                 "hgetall", "hdel", "hmget", "hexists", "incrbyfloat"]:
        assert name in names, name


@pytest.mark.parametrize("mode", ["embedded", "shared"])
def test_multi_exec_answers_as_redis_does(make_sluice, redis_server, reference, mode):
    node = make_sluice(*(["--redis", redis_server.url] if mode == "shared" else [])).start()
    transcripts = []
    for client in (node.client(), reference):
        out = []
        # redis-py's transactional pipeline: MULTI, the commands (+QUEUED each), EXEC.
        pipe = client.pipeline(transaction=True)
        pipe.set("t:a", "1").incr("t:a").expire("t:a", 100).mset({"t:b": "x", "t:c": "y"}).hset("t:h", "f", "v").get("t:a").incr("t:b")
        out.append(pipe.execute(raise_on_error=False))
        out[-1] = [str(r) if isinstance(r, Exception) else r for r in out[-1]]
        # A command that cannot be queued discards the whole transaction.
        conn = client.connection_pool.get_connection()
        try:
            for args in (["MULTI"], ["SET", "t:d", "1"], ["NOSUCH"], ["EXEC"], ["MULTI"], ["MULTI"], ["DISCARD"], ["DISCARD"], ["EXEC"],
                         ["MULTI"], ["SET", "t:e", "1"], ["GET"], ["EXEC"]):
                conn.send_command(*args)
                try:
                    out.append(conn.read_response())
                except redis.ResponseError as e:
                    out.append(str(e).split(",")[0])
        finally:
            client.connection_pool.release(conn)
        out.append([client.get("t:d"), client.get("t:e"), client.ttl("t:a")])
        transcripts.append(out)
    assert transcripts[0] == transcripts[1]
    assert transcripts[0][0][:3] == [True, 2, True]


def test_watch_is_refused_rather_than_pretended(make_sluice):
    c = make_sluice().start().client()
    with pytest.raises(redis.ResponseError, match="WATCH is not supported"):
        c.execute_command("WATCH", "k")
