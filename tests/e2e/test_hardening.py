"""Hostile and careless clients against a real sluice process: nothing crashes it, nothing grows
without bound, nothing acknowledged is lost. Each test is bounded in time and count."""
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest
import redis

from conftest import SluiceProcess, as_dict, wait_for


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw(port, payload=b"", timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if payload:
        s.sendall(payload)
    return s


def is_closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:  # closed with our unread bytes still in its buffer
        return True


def read_until(s, suffix, limit=1 << 20):
    data = b""
    while not data.endswith(suffix) and len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_numbers_that_used_to_trap_are_refused_and_the_server_stays_up(sluice):
    r = sluice.client()
    with pytest.raises(redis.ResponseError, match="TOKENS must be at most"):
        r.execute_command("CACHE.SET", "tk", "v", "TOKENS", 9223372036854775807)
    with pytest.raises(redis.ResponseError, match="OPEN-MS must be"):
        r.execute_command("CB.CONFIG", "b", "OPEN-MS", 9223372036854775807, "MIN-CALLS", 1)
    r.execute_command("CB.CONFIG", "b", "OPEN-MS", 604800000, "MIN-CALLS", 1)
    allowed, _, ticket, _ = r.execute_command("CB.ALLOW", "b")
    assert r.execute_command("CB.REPORT", "b", ticket, "fail")[1] == b"open"
    # Settlements far above their estimates: debt stops at its floor.
    ids = [r.execute_command("RL.RESERVE", "d", 1000000, 10000000000, 0)[1] for _ in range(150)]
    for rid in ids:
        assert r.execute_command("RL.SETTLE", rid, 10000000000)[1] == 0
    r.execute_command("CACHE.SET", "big", "v", "TOKENS", 10000000000, "COST", 1000000000)
    for _ in range(3):
        r.execute_command("CACHE.GET", "big")
    assert r.ping()
    sluice.stop()
    sluice.start()  # what was stored reloads without trouble
    assert sluice.client().execute_command("CACHE.GET", "big")[0] == b"v"


def test_star_zero_gets_no_reply_as_in_redis(sluice):
    s = raw(sluice.port, b"*0\r\n*-1\r\nPING\r\n")
    assert read_until(s, b"+PONG\r\n") == b"+PONG\r\n"
    s.close()


def test_more_connections_than_file_descriptors_are_refused_not_fatal(data_dir):
    # The process may open 1024 files: Sluice keeps 256 for itself (128, and the operating
    # port's 128 connections) and allows the rest.
    node = SluiceProcess(data_dir)
    limit = (1024, 1024)
    node.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit)
    node.start()
    socks, refused = [], 0
    try:
        for _ in range(1100):
            s = raw(node.port)
            socks.append(s)
        for s in socks:
            s.sendall(b"PING\r\n")
        for s in socks:
            reply = read_until(s, b"\r\n")
            if reply.startswith(b"-ERR max number of clients reached"):
                refused += 1
            else:
                assert reply == b"+PONG\r\n", reply
        assert 1100 - refused == 1024 - 256  # exactly --maxclients as the limit allows
    finally:
        for s in socks:
            s.close()
    # Still serving, and idle (no busy loop on accept).
    r = node.client()
    assert wait_for(lambda: r.ping(), 5) is not None
    before = cpu_seconds(node.proc.pid)
    time.sleep(1.0)
    assert cpu_seconds(node.proc.pid) - before < 0.3
    stats = as_dict(r.execute_command("STATS"))
    assert stats[b"rejected_connections"] == refused
    node.stop()


def test_a_client_that_never_reads_is_disconnected_and_others_are_served(data_dir):
    node = SluiceProcess(data_dir, ["--client-output-buffer-limit", "64mb 1mb 3"]).start()
    r = node.client()
    r.set("big", b"x" * 100_000)
    start_rss = rss_kb(node.proc.pid)
    s = raw(node.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"GET big\r\n" * 1000
    sent, stalls = 0, []
    s.setblocking(False)
    deadline = time.time() + 6
    while time.time() < deadline:
        try:
            sent += s.send(request)
        except BlockingIOError:
            pass
        except OSError:
            break  # disconnected
        t0 = time.time()
        assert r.ping()
        stalls.append(time.time() - t0)
        time.sleep(0.01)
    # The server stopped reading it (its sends block), kept others fast, then let it go.
    assert max(stalls) < 0.5, max(stalls)
    assert wait_for(lambda: as_dict(r.execute_command("STATS"))[b"output_limit_disconnects"] >= 1, 10) is not None
    s.close()
    assert rss_kb(node.proc.pid) < start_rss + 64 * 1024  # not the gigabytes it took before
    node.stop()


def hold_unread_replies(node, clients):
    """`clients` connections that each pipeline 20 GETs of key "big" and never read."""
    socks = []
    for _ in range(clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel takes little of it
        s.connect(("127.0.0.1", node.port))
        s.sendall(b"GET big\r\n" * 20)
        socks.append(s)
    return socks


def read_bulk(s, size):
    """One `$<size>` reply, read whole from a raw socket."""
    want = len(b"$%d\r\n" % size) + size + 2
    data = b""
    while len(data) < want:
        chunk = s.recv(want - len(data))
        assert chunk, "disconnected"
        data += chunk
    return data


@pytest.mark.parametrize("limit", ["16mb", "0"])
def test_replies_held_for_all_clients_are_bounded_and_the_largest_holders_go(data_dir, limit):
    """Forty clients that each leave 20 MB of replies unread stay under their own 64 MB limit;
    --maxmemory-clients bounds them together (the largest holders are disconnected), while a
    client that reads its replies is served and kept. With 0 (no limit) nobody is told to go:
    what the bound holds back is measured, not assumed."""
    node = SluiceProcess(data_dir, ["--maxmemory-clients", limit]).start()
    r = node.client()
    size = 1_000_000
    r.set("big", b"x" * size)
    # The reader takes its replies through a small receive buffer too: each 1 MB reply waits in
    # the server, counted, while it reads — and must be counted down as it goes out.
    reader = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.connect(("127.0.0.1", node.port))
    reader.settimeout(10)
    # First six at once: more than the kernel takes, so the server holds megabytes for the
    # reader for a while (and counts them) — all of it must be counted down once it is read.
    reader.sendall(b"GET big\r\n" * 6)
    for _ in range(6):
        assert read_bulk(reader, size).startswith(b"$1000000\r\n")
    socks = hold_unread_replies(node, 40)
    stats = lambda: as_dict(r.execute_command("STATS"))
    # The reader is served throughout and never disconnected.
    for _ in range(5):
        reader.sendall(b"GET big\r\n")
        assert read_bulk(reader, size).startswith(b"$1000000\r\n")
    if limit == "0":
        # Everything the 40 hold stays held: well past the 16 MB the other run allows.
        assert wait_for(lambda: stats()[b"client_output_bytes"] > 32 << 20, 10) is not None
        assert stats()[b"evicted_clients"] == 0
    else:
        assert wait_for(lambda: stats()[b"evicted_clients"] >= 1, 10) is not None
        # Held under the bound (plus the last report's overshoot: one client's replies).
        assert wait_for(lambda: stats()[b"client_output_bytes"] <= (16 << 20) + 4 * size, 10) is not None
        assert stats()[b"output_limit_disconnects"] == 0  # none passed its own limit
        assert "over --maxmemory-clients" in open(node.log_path).read()
    for s in socks:
        s.close()
    # Back to nothing, the reader included, without it sending anything more: a connection is
    # counted down as its writes go out, not at its next request.
    assert wait_for(lambda: stats()[b"client_output_bytes"] == 0, 10) is not None
    reader.sendall(b"PING\r\n")
    assert read_until(reader, b"\r\n") == b"+PONG\r\n"
    node.stop()


def test_unauthenticated_peers_cannot_make_the_server_buffer_megabytes(data_dir):
    node = SluiceProcess(data_dir, ["--requirepass", "pw"]).start()
    start_rss = rss_kb(node.proc.pid)
    socks = []
    for _ in range(30):
        s = raw(node.port, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$15000000\r\n" + b"x" * 65536)
        socks.append(s)
    for s in socks:
        reply = read_until(s, b"\r\n")
        assert reply.startswith(b"-ERR Protocol error"), reply
        assert is_closed(s)
        s.close()
    assert rss_kb(node.proc.pid) < start_rss + 32 * 1024
    assert node.client(password="pw").ping()
    node.stop()


def test_fast_ingest_stays_within_its_memory_and_disk_bounds(data_dir):
    node = SluiceProcess(data_dir, ["--l1-max-memory", "16mb", "--l2-max-bytes", "24mb"]).start()
    subprocess.run(["redis-benchmark", "-p", str(node.port), "-t", "set", "-n", "400000", "-r", "400000", "-d", "100",
                    "-P", "32", "-c", "8", "-q"], check=True, capture_output=True, timeout=300)
    r = node.client()
    assert wait_for(lambda: as_dict(r.execute_command("STATS"))[b"l2_bytes"] <= 24 * 1024 * 1024, 20) is not None
    stats = as_dict(r.execute_command("STATS"))
    assert stats[b"l2_evicted_rows"] > 0
    assert rss_kb(node.proc.pid) < 400 * 1024
    # The directory followed the evictions: keys counted are about what the file holds.
    assert stats[b"keys"] < 400000
    node.stop()
    db = os.path.join(node.data_dir, "sluice.db")
    assert os.path.getsize(db) < 48 * 1024 * 1024


def test_semantic_evictions_delete_their_rows(data_dir):
    node = SluiceProcess(data_dir).start()
    r = node.client()
    r.execute_command("SEM.CONFIG", "ns", "MAXENTRIES", 100)
    for i in range(300):
        r.execute_command("SEM.SET", "ns", f"question number {i} about topic {i * 7}", f"answer {i}")
    assert as_dict(r.execute_command("SEM.INFO", "ns"))[b"entries"] == 100
    node.stop()
    rows = sqlite3.connect(os.path.join(node.data_dir, "sluice.db")).execute("SELECT count(*) FROM sem_entries").fetchone()[0]
    assert rows == 100


def burst_then_kill(node, n=10_000, clients=10):
    """n SETs from several clients, SIGKILL right after the last +OK; the keys acknowledged."""
    acked = []
    lock = threading.Lock()

    def run(c):
        r = node.client()
        mine = []
        for i in range(c, n, clients):
            assert r.set(f"k{i}", f"v{i}") is True
            mine.append(i)
        with lock:
            acked.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    return acked


def lost_after_restart(node, acked):
    node.start()
    r = node.client()
    pipe = r.pipeline(transaction=False)
    for i in acked:
        pipe.get(f"k{i}")
    values = pipe.execute()
    return sum(1 for i, v in zip(acked, values) if v != f"v{i}".encode())


def test_kill_9_after_the_last_ok_loses_nothing_with_fsync_always(data_dir):
    node = SluiceProcess(data_dir, ["--fsync", "always"]).start()
    acked = burst_then_kill(node)
    assert len(acked) == 10_000
    assert lost_after_restart(node, acked) == 0
    node.stop()


def test_kill_9_window_of_the_default_is_small(data_dir):
    node = SluiceProcess(data_dir).start()
    acked = burst_then_kill(node)
    lost = lost_after_restart(node, acked)
    print(f"\nfsync everysec (default): {lost} of {len(acked)} acknowledged writes lost to kill -9")
    # What is lost is at most the batch waiting for its commit (a few milliseconds of writes).
    assert lost < 2000
    node.stop()


def test_wrong_passwords_are_slowed_counted_and_do_not_hold_others(data_dir):
    node = SluiceProcess(data_dir, ["--requirepass", "pw"]).start()
    s = raw(node.port, b"AUTH nope\r\n" * 20)
    good = node.client(password="pw")
    t0 = time.time()
    replies = read_until(s, b"\r\n" * 1, limit=10)  # the first one
    assert good.ping()  # another client is not held up meanwhile
    data = replies
    while data.count(b"\r\n") < 20:
        data += s.recv(65536)
    took = time.time() - t0
    assert data.count(b"-WRONGPASS") == 20
    assert took >= 1.9  # 100 ms each, one after the other
    assert as_dict(good.execute_command("STATS"))[b"auth_failures"] == 20
    s.close()
    node.stop()


def tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True).returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_data_directory_full_refuses_writes_and_recovers_and_read_only_is_refused_at_start(data_dir):
    mnt = os.path.join(data_dir, "small")
    assert tmpfs(mnt, "2m")
    try:
        node = SluiceProcess(data_dir, [])
        node.data_dir = mnt
        node.start()
        r = node.client()
        r.set("before", "kept")
        refused = 0
        for i in range(2000):  # 2 MB of room, 4 MB of writes
            try:
                r.set(f"fill{i}", b"x" * 2000)
            except redis.ResponseError as e:
                assert str(e).startswith("Sluice cannot write its data file") or "MISCONF" in str(e), e
                refused += 1
        assert refused > 0
        assert r.get("before") == b"kept" and r.ping()  # reads go on
        # Room again: the retried batch commits and writes are taken again.
        subprocess.run(["mount", "-o", "remount,size=16m", mnt], check=True)
        assert wait_for(lambda: as_dict(r.execute_command("STATS"))[b"l2_failing"] == 0, 10) is not None
        assert r.set("after", "ok") is True
        node.stop()
        node.start()
        assert node.client().get("after") == b"ok"
        node.stop()
        # Read-only (remounted while nothing is open): Sluice says so and does not start.
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
        with pytest.raises(RuntimeError, match="readonly|read-only|not writable"):
            node.start()
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_sigterm_while_clients_pipeline_answers_everything_read_and_exits_0(data_dir):
    node = SluiceProcess(data_dir).start()
    results, stop = [], threading.Event()

    def client(c):
        s = raw(node.port, timeout=10)
        sent, data = 0, b""
        try:
            while not stop.is_set() and sent < 200_000:
                batch = b"".join(b"SET c%d:%d v%d\r\nGET c%d:%d\r\n" % (c, i, i, c, i) for i in range(sent, sent + 50))
                s.sendall(batch)
                sent += 50
                # Read a little, not everything: requests stay in flight when the signal comes.
                s.setblocking(False)
                try:
                    data += s.recv(1 << 20)
                except BlockingIOError:
                    pass
                s.setblocking(True)
        except OSError:
            pass
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        results.append((c, sent, data))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(50)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    node.proc.send_signal(signal.SIGTERM)
    stop.set()
    # The server stops reading and waits for each client to read what it owes; a client blocked
    # in sendall gives up only at its 10 s socket timeout, so 15 s left a debug build under
    # load too little (it took 16 s once in CI). The bound only guards against a hang.
    code = node.proc.wait(timeout=45)
    for t in threads:
        t.join(timeout=30)
    assert code == 0
    answered = 0
    for c, sent, data in results:
        # Whole replies only, in order (SET's +OK, then GET's value, ...), ending on a reply's
        # boundary: nothing the server read was left unanswered or cut short.
        expected, boundaries = b"", {0}
        i = 0
        while len(expected) < len(data):
            expected += b"+OK\r\n"
            boundaries.add(len(expected))
            expected += b"$%d\r\nv%d\r\n" % (len(str(i)) + 1, i)
            boundaries.add(len(expected))
            i += 1
        assert data == expected[:len(data)], (c, len(data))
        assert len(data) in boundaries, (c, data[-40:])
        answered += data.count(b"+OK\r\n")
    assert answered > 0
    print(f"\nSIGTERM under load: {answered} SETs (and their GETs) answered in full, exit code {code}")


def test_sigterm_right_after_start_is_a_graceful_stop(data_dir):
    # The node listens before its service group installs signal handlers; a SIGTERM in that
    # window once took the default action (exit by signal, -15) with writes queued (seen in CI).
    for i in range(5):
        node = SluiceProcess(data_dir).start()  # returns as soon as the port accepts
        node.client().set(f"early:{i}", "x")
        assert node.stop(signal.SIGTERM) == 0
    node = SluiceProcess(data_dir).start()
    assert [node.client().get(f"early:{i}") for i in range(5)] == [b"x"] * 5
    node.stop()
