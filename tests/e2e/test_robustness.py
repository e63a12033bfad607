"""Bad input over raw sockets: one clear error or a clean close, and everyone else goes on."""
import socket
import threading
import time

import redis

from conftest import run_together


def raw(sluice):
    s = socket.create_connection(("127.0.0.1", sluice.port), timeout=10)
    return s


def recv_until(s, expected, timeout=10):
    data = b""
    deadline = time.time() + timeout
    while len(data) < len(expected) and time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_oversized_value_is_refused_connection_continues(make_sluice):
    sl = make_sluice("--max-value-size", "1kb").start()
    s = raw(sl)
    big = b"x" * 5000
    s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000\r\n" + big[:100])
    time.sleep(0.05)
    s.sendall(big[100:] + b"\r\nPING\r\n")
    expected = b"-ERR value too large (5000 bytes > 1024)\r\n+PONG\r\n"
    assert recv_until(s, expected) == expected


def test_too_long_inline_line(sluice):
    s = raw(sluice)
    s.sendall(b"SET k " + b"v" * 70000 + b"\r\nPING\r\n")
    expected = b"-ERR inline request too long (more than 65536 bytes)\r\n+PONG\r\n"
    assert recv_until(s, expected) == expected


def test_broken_frame_gets_error_then_clean_close(sluice):
    s = raw(sluice)
    s.sendall(b"*2\r\n$3\r\nGET\r\n:12\r\n")
    data = recv_until(s, b"-ERR Protocol error: expected '$', got ':'\r\n")
    assert data == b"-ERR Protocol error: expected '$', got ':'\r\n"
    assert s.recv(100) == b""  # closed by the server


def test_half_sent_frame_then_disconnect_leaves_server_fine(sluice):
    r = sluice.client()
    r.set("survivor", "yes")
    for _ in range(20):
        s = raw(sluice)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$9\r\nsurvivor\r\n$100\r\npartial")
        s.close()
    assert r.get("survivor") == b"yes"
    assert r.ping()


def test_client_that_closes_its_side_gets_all_replies(sluice):
    s = raw(sluice)
    s.sendall(b"SET hc 1\r\nGET hc\r\nPING\r\n")
    s.shutdown(socket.SHUT_WR)
    expected = b"+OK\r\n$1\r\n1\r\n+PONG\r\n"
    assert recv_until(s, expected) == expected
    assert s.recv(10) == b""


def test_garbage_on_one_connection_does_not_disturb_others(sluice):
    good = sluice.client()
    stop = threading.Event()
    errors = []

    def hammer():
        try:
            i = 0
            while not stop.is_set() and i < 2000:
                good.set(f"g{i}", str(i))
                assert good.get(f"g{i}") == str(i).encode()
                i += 1
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=hammer)
    t.start()
    for payload in [b"\x00\xff\xfe*\r\n", b"*1\r\n$-9\r\n", b"*9999999999\r\n", b'SET "a\r\n', b"*1\r\n$4\r\nPIN"]:
        s = raw(sluice)
        s.sendall(payload)
        s.close()
    t.join(timeout=60)
    stop.set()
    assert not errors


def test_fifty_concurrent_lease_requests_get_one_token(sluice):
    clients = [sluice.client() for _ in range(50)]
    for c in clients:
        c.ping()
    tokens = run_together(50, lambda i: clients[i].execute_command("CACHE.GET", "stampede", "LEASE", "60000")[3])
    assert sum(t is not None for t in tokens) == 1


def test_auth_required_when_password_set(make_sluice):
    sl = make_sluice("--requirepass", "hunter2").start()
    import pytest
    with pytest.raises(redis.AuthenticationError):
        sl.client().get("x")
    r = sl.client(password="hunter2")
    assert r.set("x", "1") and r.get("x") == b"1"


def test_non_loopback_bind_without_password_refuses_to_start(data_dir):
    import subprocess
    from conftest import SLUICE_BIN
    out = subprocess.run([SLUICE_BIN, "serve", "--bind", "0.0.0.0", "--port", "0", "--data-dir", data_dir],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "--requirepass" in out.stderr
