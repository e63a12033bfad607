"""Slots, budgets and provider-driven limits shared by three Sluice instances on one real
redis-server: the slot queue and the budget are one for all instances, decided atomically in
Redis, and a release on one instance wakes a waiter on another at once."""
import signal
import socket
import threading
import time
from decimal import Decimal

from conftest import as_dict, run_together, wait_for


def shared(make_sluice, redis_server, n=3):
    nodes = [make_sluice("--redis", redis_server.url).start() for _ in range(n)]
    clients = [s.client() for s in nodes]
    for c in clients:
        assert wait_for(lambda c=c: as_dict(c.execute_command("STATS")).get(b"rl_slots_subscribed") == 1, 5) is not None
    return nodes, clients


def test_thirty_clients_on_three_instances_never_hold_more_than_three_slots(make_sluice, redis_server):
    nodes, _ = shared(make_sluice, redis_server)
    lock = threading.Lock()
    state = {"in_flight": 0, "most": 0, "order": []}
    priorities = [0, 5, 10]

    def work(i):
        c = nodes[i % 3].client()
        priority = priorities[(i // 3) % 3]
        granted, slot, _, _ = c.execute_command("RL.ACQUIRE", "upstream:gpu", 3, "PRIORITY", priority,
                                                 "WAIT", 30000, "LEASE", 20000)
        if granted != 1:
            return ("refused", priority)
        with lock:
            state["in_flight"] += 1
            state["most"] = max(state["most"], state["in_flight"])
            state["order"].append(priority)
        time.sleep(0.15)  # the upstream call
        with lock:
            state["in_flight"] -= 1
        assert c.execute_command("RL.RELEASE", "upstream:gpu", slot) == 1
        return ("served", priority)

    results = run_together(30, work)
    assert all(r is not None and r[0] == "served" for r in results), results
    assert state["most"] <= 3, f"{state['most']} slots held at once"
    assert state["most"] == 3  # the limit was reached: the check above could have failed
    # The first three went in as they arrived; after them the queue is by priority.
    queued = state["order"][3:]
    mean = {p: sum(k for k, q in enumerate(queued) if q == p) / queued.count(p) for p in priorities}
    assert mean[10] < mean[5] < mean[0], (state["order"], mean)


def test_a_release_on_one_instance_wakes_a_waiter_on_another_at_once(make_sluice, redis_server):
    (a, b, c), _ = shared(make_sluice, redis_server)
    holder = a.client()
    granted, slot, _, _ = holder.execute_command("RL.ACQUIRE", "shared:1", 1, "LEASE", 60000)
    assert granted == 1
    # Full on every instance, not only on the one that granted it.
    assert c.client().execute_command("RL.ACQUIRE", "shared:1", 1)[0] == 0
    result = {}

    def wait():
        result["reply"] = b.client().execute_command("RL.ACQUIRE", "shared:1", 1, "WAIT", 20000, "LEASE", 5000)
        result["at"] = time.monotonic()

    t = threading.Thread(target=wait)
    t.start()
    assert wait_for(lambda: as_dict(b.client().execute_command("STATS"))[b"rl_slot_waiters_shared"] == 1, 5) is not None
    released = time.monotonic()
    assert holder.execute_command("RL.RELEASE", "shared:1", slot) == 1
    t.join(20)
    assert result["reply"][0] == 1
    assert result["at"] - released < 0.5, "the grant travelled through Redis pub/sub"


def test_a_waiter_whose_client_leaves_gives_its_place_up_across_instances(make_sluice, redis_server):
    (a, b, c), _ = shared(make_sluice, redis_server)
    holder = a.client()
    _, slot, _, _ = holder.execute_command("RL.ACQUIRE", "shared:2", 1, "LEASE", 60000)
    # A raw client on B queues at a high priority, then goes away.
    s = socket.create_connection(("127.0.0.1", b.port))
    s.sendall(b"*9\r\n$10\r\nRL.ACQUIRE\r\n$8\r\nshared:2\r\n$1\r\n1\r\n$8\r\nPRIORITY\r\n$3\r\n100\r\n"
              b"$4\r\nWAIT\r\n$5\r\n60000\r\n$5\r\nLEASE\r\n$5\r\n60000\r\n")
    assert wait_for(lambda: as_dict(b.client().execute_command("STATS"))[b"rl_slot_waiters_shared"] == 1, 5) is not None
    s.close()
    assert wait_for(lambda: as_dict(b.client().execute_command("STATS"))[b"rl_slot_waiters_shared"] == 0, 5) is not None
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", c.client().execute_command(
        "RL.ACQUIRE", "shared:2", 1, "WAIT", 20000, "LEASE", 5000)))
    t.start()
    assert wait_for(lambda: as_dict(c.client().execute_command("STATS"))[b"rl_slot_waiters_shared"] == 1, 5) is not None
    assert holder.execute_command("RL.RELEASE", "shared:2", slot) == 1
    t.join(10)
    assert result["r"][0] == 1, "the departed waiter's place went to the next one"


def test_a_lease_that_ends_on_one_instance_goes_to_a_waiter_on_another(make_sluice, redis_server):
    (a, b, _), _ = shared(make_sluice, redis_server)
    # The holder on A never releases: its 300 ms lease ends and B's waiter gets the slot.
    assert a.client().execute_command("RL.ACQUIRE", "shared:3", 1, "LEASE", 300)[0] == 1
    start = time.monotonic()
    granted = b.client().execute_command("RL.ACQUIRE", "shared:3", 1, "WAIT", 10000, "LEASE", 1000)
    took = time.monotonic() - start
    assert granted[0] == 1 and took < 1.5, took


def test_two_hundred_concurrent_spends_on_three_instances_never_exceed_the_budget(make_sluice, redis_server):
    _, clients = shared(make_sluice, redis_server)
    # 200 threads, each on a connection of its own (redis-py's pool opens one per thread).
    replies = run_together(200, lambda i: clients[i % 3].execute_command("RL.SPEND", "team:shared", "0.37", "BUDGET", "37", "PERIOD", "day"))
    allowed = sum(1 for r in replies if r[0] == 1)
    assert allowed == 100, allowed
    spent, budget, remaining, reset, period, near = clients[1].execute_command("RL.BUDGET", "team:shared")
    assert Decimal(spent.decode() if isinstance(spent, bytes) else str(spent)) == Decimal("37")
    assert Decimal(remaining.decode() if isinstance(remaining, bytes) else str(remaining)) == 0
    assert period == b"day" and near == 1 and 0 < reset <= 86_400_000


def test_penalize_and_sync_hold_the_bucket_for_every_instance(make_sluice, redis_server):
    _, (a, b, c) = shared(make_sluice, redis_server)
    assert a.execute_command("RL.TAKE", "openai:gpt", 600, 100000, "TOKENS", 10)[0] == 1
    remaining_requests, remaining_tokens, retry, reset = b.execute_command("RL.PENALIZE", "openai:gpt", 3000)
    assert (remaining_requests, remaining_tokens) == (0, 0) and 3000 <= retry and reset >= 3000
    allowed, _, _, retry_c, _ = c.execute_command("RL.TAKE", "openai:gpt", 600, 100000)
    assert allowed == 0 and 2500 <= retry_c <= 3100 + 100
    # The provider's headers say 42 requests left: every instance sees them.
    assert a.execute_command("RL.SYNC", "other:gpt", 42, -1, 0) is None  # no bucket and no limits given
    rr, rt, retry, _ = a.execute_command("RL.SYNC", "other:gpt", 42, -1, 0, 600, 100000)
    assert (rr, rt, retry) == (42, 100000, 0)
    assert c.execute_command("RL.PEEK", "other:gpt")[0] == 42
    # Zero left with a reset: held for that long on every instance.
    b.execute_command("RL.SYNC", "other:gpt", 0, 5000, 2000)
    allowed, rr, rt, retry, _ = c.execute_command("RL.TAKE", "other:gpt", 600, 100000, "TOKENS", 1)
    assert allowed == 0 and rr == 0 and rt == 5000 and 1500 <= retry <= 2200


def test_a_crashed_instances_waiters_do_not_hold_slots(make_sluice, redis_server):
    (a, b, c), _ = shared(make_sluice, redis_server)
    holder = a.client()
    _, slot, _, _ = holder.execute_command("RL.ACQUIRE", "shared:4", 1, "LEASE", 60000)
    # B's client queues first (and would be next), then B dies without a word.
    s = socket.create_connection(("127.0.0.1", b.port))
    s.sendall(b"*7\r\n$10\r\nRL.ACQUIRE\r\n$8\r\nshared:4\r\n$1\r\n1\r\n$4\r\nWAIT\r\n$5\r\n60000\r\n"
              b"$5\r\nLEASE\r\n$5\r\n60000\r\n")
    assert wait_for(lambda: as_dict(b.client().execute_command("STATS"))[b"rl_slot_waiters_shared"] == 1, 5) is not None
    b.stop(signal.SIGKILL)
    s.close()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", c.client().execute_command(
        "RL.ACQUIRE", "shared:4", 1, "WAIT", 20000, "LEASE", 5000)))
    t.start()
    assert wait_for(lambda: as_dict(c.client().execute_command("STATS"))[b"rl_slot_waiters_shared"] == 1, 5) is not None
    released = time.monotonic()
    assert holder.execute_command("RL.RELEASE", "shared:4", slot) == 1
    t.join(10)
    assert result["r"][0] == 1 and time.monotonic() - released < 1.0, "the dead instance's waiter was skipped"
