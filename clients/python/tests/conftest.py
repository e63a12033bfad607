"""Fixtures: a real `sluice` (from $SLUICE_BIN), a real redis-server for shared mode, and the
fake OpenAI upstream from examples/ in a thread. Everything on free 127.0.0.1 ports, stopped at
the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Set

import pytest

import sluice

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
EXAMPLES = os.path.join(REPO, "examples")
sys.path.insert(0, EXAMPLES)

from fake_upstream import FakeUpstream  # noqa: E402

SLUICE_BIN = os.environ.get("SLUICE_BIN", "/tmp/sluice-for-client")

CONFIG = """
[limits.test-policy]
rpm = 1000
tpm = 1000000

[budgets.test-budget]
budget = 1.0
period = "day"
"""


_handed_out: Set[int] = set()


def free_port() -> int:
    # Never one handed out before in this run: two calls in a row can get the same port back.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def wait_listening(port: int, proc: "subprocess.Popen[bytes]", what: str, log: Optional[str] = None) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = open(log).read() if log else ""
            raise RuntimeError(f"{what} exited early (code {proc.returncode}):\n{text}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on {port}")


def stop(proc: "subprocess.Popen[bytes]") -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SluiceServer:
    def __init__(self, workdir: str, *extra: str) -> None:
        if not os.access(SLUICE_BIN, os.X_OK):
            raise RuntimeError(f"no sluice binary at {SLUICE_BIN}: build it (swift build -c release) and set SLUICE_BIN")
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="sluice-", dir=workdir)
        config = os.path.join(self.data_dir, "sluice.toml")
        with open(config, "w") as f:
            f.write(CONFIG)
        self.log = os.path.join(self.data_dir, "sluice.log")
        args = [SLUICE_BIN, "serve", "--port", str(self.port), "--http-port", "0", "--data-dir", self.data_dir]
        args += ["--config", config, "--max-stale", "600000", "--threads", "2", *extra]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_listening(self.port, self.proc, "sluice", self.log)
        except BaseException:
            stop(self.proc)  # it may be running without listening: never leave it behind
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, **options: Any) -> sluice.Sluice:
        return sluice.Sluice(url=self.url, socket_timeout=30, **options)

    def async_client(self, **options: Any) -> sluice.AsyncSluice:
        return sluice.AsyncSluice(url=self.url, socket_timeout=30, **options)

    def stop(self) -> None:
        stop(self.proc)


class RedisServer:
    def __init__(self, workdir: str) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(self.port, self.proc, "redis-server")
        except BaseException:
            stop(self.proc)
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop(self.proc)


@pytest.fixture(scope="session")
def workdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="sluice-client-tests-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def server(workdir: str) -> Iterator[SluiceServer]:
    """One embedded-mode Sluice for the session; tests keep apart by unique names."""
    s = SluiceServer(workdir)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def redis_server(workdir: str) -> Iterator[RedisServer]:
    r = RedisServer(workdir)
    yield r
    r.stop()


@pytest.fixture(scope="session")
def shared_pair(workdir: str, redis_server: RedisServer) -> Iterator[List[SluiceServer]]:
    """Two Sluice instances in shared mode on one redis-server."""
    pair: List[SluiceServer] = []
    try:
        for _ in range(2):
            pair.append(SluiceServer(workdir, "--redis", redis_server.url))
        yield pair
    finally:
        for s in pair:
            s.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def sl(request: pytest.FixtureRequest, server: SluiceServer) -> Iterator[sluice.Sluice]:
    client = server.client(protocol=request.param)
    yield client
    client.close()


@pytest.fixture(scope="module")
def quiet_server(workdir: str) -> Iterator[SluiceServer]:
    """A Sluice of the module's own, so what it holds (open reservations, held slots) is only
    what the module's tests left behind."""
    s = SluiceServer(workdir)
    yield s
    s.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "the condition") -> None:
    """Polls instead of sleeping and hoping."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.01)


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    up = FakeUpstream(latency_ms=20).start()
    yield up
    up.stop()


@pytest.fixture
def name() -> Callable[[str], str]:
    """Unique names, so tests sharing one server never see each other's keys."""
    run = uuid.uuid4().hex[:10]
    return lambda what: f"t-{run}-{what}"


def user(text: str, **extra: Any) -> Dict[str, Any]:
    return {"role": "user", "content": text, **extra}
