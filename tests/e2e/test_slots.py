"""RL.ACQUIRE with a priority queue over real sockets: waiting holds no thread of the server,
a release wakes the best waiter at once, a client that leaves while waiting leaves the queue,
and a wait ends with [0, nil, position, estimate]."""
import socket
import threading
import time

from conftest import wait_for


def acquire(client, *args):
    granted, slot, position, estimate = client.execute_command("RL.ACQUIRE", *args)
    return granted, slot, position, estimate


def test_a_release_wakes_a_waiter_at_once(sluice):
    holder, waiter = sluice.client(), sluice.client()
    granted, slot, _, _ = acquire(holder, "gpu", 1, "LEASE", 60000)
    assert granted == 1
    result = {}

    def wait():
        start = time.monotonic()
        result["reply"] = acquire(waiter, "gpu", 1, "WAIT", 10000, "LEASE", 5000)
        result["took"] = time.monotonic() - start

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)  # the waiter is queued (the reply is what is tested, not this pause)
    assert "reply" not in result
    # Other connections are served while one waits.
    assert holder.ping()
    released_at = time.monotonic()
    assert holder.execute_command("RL.RELEASE", "gpu", slot) == 1
    t.join(10)
    granted, new_slot, position, estimate = result["reply"]
    assert (granted, position, estimate) == (1, 0, 0) and new_slot
    assert time.monotonic() - released_at < 1.0


def test_higher_priority_first_then_arrival_order(sluice):
    holder = sluice.client()
    _, slot, _, _ = acquire(holder, "api", 1, "LEASE", 60000)
    order, lock = [], threading.Lock()

    def wait(name, priority):
        c = sluice.client()
        granted, s, _, _ = acquire(c, "api", 1, "PRIORITY", priority, "WAIT", 20000, "LEASE", 60000)
        with lock:
            order.append(name)
        c.execute_command("RL.RELEASE", "api", s)  # the next one's turn

    threads = []
    for name, priority in [("batch-1", 0), ("interactive-1", 10), ("batch-2", 0), ("interactive-2", 10)]:
        t = threading.Thread(target=wait, args=(name, priority))
        t.start()
        threads.append(t)
        time.sleep(0.1)  # arrival order
    holder.execute_command("RL.RELEASE", "api", slot)
    for t in threads:
        t.join(20)
    assert order == ["interactive-1", "interactive-2", "batch-1", "batch-2"]


def test_a_client_that_leaves_while_waiting_leaves_the_queue(sluice):
    holder, last = sluice.client(), sluice.client()
    _, slot, _, _ = acquire(holder, "pool", 1, "LEASE", 60000)
    # A raw socket that asks at the highest priority, then goes away without reading.
    raw = socket.create_connection(("127.0.0.1", sluice.port))
    raw.sendall(b"RL.ACQUIRE pool 1 PRIORITY 100 WAIT 20000\r\n")
    time.sleep(0.2)
    raw.close()
    result = {}
    t = threading.Thread(target=lambda: result.update(reply=acquire(last, "pool", 1, "WAIT", 20000)))
    t.start()
    time.sleep(0.2)
    holder.execute_command("RL.RELEASE", "pool", slot)
    t.join(10)
    assert result["reply"][0] == 1  # the gone client did not take the slot


def test_a_wait_ends_not_granted_with_its_place(sluice):
    holder, waiter = sluice.client(), sluice.client()
    acquire(holder, "busy", 1, "LEASE", 60000)
    start = time.monotonic()
    granted, slot, position, estimate = acquire(waiter, "busy", 1, "WAIT", 300)
    took = time.monotonic() - start
    assert (granted, slot, position) == (0, None, 1)
    assert 0 < estimate <= 60000
    assert 0.25 <= took < 5
    # No wait asked: answered at once, not granted.
    assert acquire(waiter, "busy", 1)[0] == 0


def test_an_ended_lease_is_reclaimed_for_a_waiter(sluice):
    holder, waiter = sluice.client(), sluice.client()
    acquire(holder, "crashy", 1, "LEASE", 300)  # never released
    start = time.monotonic()
    granted, _, _, _ = acquire(waiter, "crashy", 1, "WAIT", 10000)
    assert granted == 1
    assert 0.2 <= time.monotonic() - start < 3


def test_a_shutdown_answers_waiters_instead_of_waiting_them_out(sluice):
    holder, waiter = sluice.client(), sluice.client()
    acquire(holder, "stop", 1, "LEASE", 60000)
    result = {}
    t = threading.Thread(target=lambda: result.update(reply=acquire(waiter, "stop", 1, "WAIT", 60000)))
    t.start()
    time.sleep(0.2)
    start = time.monotonic()
    assert sluice.stop() == 0
    t.join(10)
    assert result["reply"][0] == 0
    assert time.monotonic() - start < 10


def test_requests_pipelined_after_a_waiting_acquire_wait_for_it(sluice):
    # As with Redis's blocking commands: what a client pipelines after a waiting RL.ACQUIRE runs
    # once the acquire is answered, so a read of what the slot protects sees the holder's last
    # write (found by an attack: the GET ran at once and read the old value).
    holder = sluice.client()
    holder.set("shared", "old")
    granted, slot, _, _ = acquire(holder, "lockk", 1, "LEASE", 10000)
    assert granted == 1
    waiter = socket.create_connection(("127.0.0.1", sluice.port), timeout=10)
    waiter.sendall(b"*5\r\n$10\r\nRL.ACQUIRE\r\n$5\r\nlockk\r\n$1\r\n1\r\n$4\r\nWAIT\r\n$4\r\n5000\r\n"
                   b"*2\r\n$3\r\nGET\r\n$6\r\nshared\r\n*2\r\n$4\r\nINCR\r\n$13\r\nafter_acquire\r\n")
    # The INCR has not run while the acquire waits (checked after the waiter is queued).
    assert wait_for(lambda: holder.execute_command("RL.ACQUIRE", "lockk", 1)[2] >= 1, 10) is not None
    assert holder.get("after_acquire") is None
    holder.set("shared", "new")
    assert holder.execute_command("RL.RELEASE", "lockk", slot) == 1
    replies = b""
    deadline = time.monotonic() + 10
    while replies.count(b"\r\n") < 8 and time.monotonic() < deadline:
        replies += waiter.recv(4096)
    waiter.close()
    assert replies.startswith(b"*4\r\n:1\r\n"), replies
    assert b"$3\r\nnew\r\n:1\r\n" in replies, replies
