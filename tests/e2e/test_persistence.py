"""The embedded SQLite L2: values and their TTLs survive a restart."""
import signal
import time

from conftest import as_dict


def test_values_survive_restart_and_are_served_from_l2(sluice):
    r = sluice.client()
    r.set("plain", "v1")
    r.set("with-ttl", "v2", ex=300)
    r.execute_command("CACHE.SET", "rich", "answer", "TOKENS", "50", "COST", "0.5")
    r.set("deleted", "x")
    r.delete("deleted")
    r.set("expires-soon", "x", px=300)
    assert sluice.stop(signal.SIGTERM) == 0

    time.sleep(0.4)  # let "expires-soon" run out while Sluice is down (wall-clock TTL)
    sluice.start()
    r = sluice.client()
    assert r.get("plain") == b"v1"
    assert r.get("deleted") is None
    assert r.get("expires-soon") is None
    assert 290 <= r.ttl("with-ttl") <= 300
    value, layer, age, _ = r.execute_command("CACHE.GET", "rich")
    assert value == b"answer" and layer == b"l2" and age >= 400
    # Read once, it is in L1 now.
    assert r.execute_command("CACHE.GET", "rich")[1] == b"l1"
    stats = as_dict(r.execute_command("STATS"))
    assert int(stats[b"keys"]) == 3
    assert int(stats[b"tokens_saved"]) == 100


def test_many_values_written_then_sigint_all_there(sluice):
    r = sluice.client()
    pipe = r.pipeline(transaction=False)
    for i in range(5000):
        pipe.set(f"bulk:{i}", f"value-{i}")
    pipe.execute()
    assert sluice.stop(signal.SIGINT) == 0
    sluice.start()
    r = sluice.client()
    pipe = r.pipeline(transaction=False)
    for i in range(0, 5000, 7):
        pipe.get(f"bulk:{i}")
    assert pipe.execute() == [f"value-{i}".encode() for i in range(0, 5000, 7)]


def test_kill_9_loses_no_write_the_journal_has(sluice):
    """`everysec` is Redis's AOF promise: a write is in the journal (beside the SQLite file)
    about a millisecond after its acknowledgement, and the file is brought up to date from the
    journal later, in large batches. Killed with SIGKILL once the journal has everything, the
    restarted node has every acknowledged write, including those SQLite never got."""
    r = sluice.client()
    pipe = r.pipeline(transaction=False)
    for i in range(20_000):
        pipe.set(f"journal:{i}", f"value-{i}")
    pipe.delete("journal:7")
    pipe.execute()

    def unwritten():
        stats = as_dict(r.execute_command("STATS"))
        return int(stats[b"l2_journal_unwritten_bytes"])

    deadline = time.time() + 10
    while unwritten() != 0 and time.time() < deadline:
        time.sleep(0.002)
    assert unwritten() == 0
    sluice.stop(signal.SIGKILL)

    sluice.start()
    r = sluice.client()
    pipe = r.pipeline(transaction=False)
    for i in range(20_000):
        pipe.get(f"journal:{i}")
    values = pipe.execute()
    missing = [i for i, v in enumerate(values) if v is None and i != 7]
    assert missing == []
    assert values[7] is None
    assert values[19_999] == b"value-19999"
    assert int(as_dict(r.execute_command("STATS"))[b"keys"]) == 19_999
    # The restart went through the journal (whatever of it the file already had is skipped).
    with open(sluice.log_path) as log:
        assert "replayed the write journal" in log.read()
