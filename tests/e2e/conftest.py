"""End-to-end fixtures: a real `sluice` process on a free loopback port, real clients."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICE_BIN = os.environ.get("SLUICE_BIN", os.path.join(ROOT, ".build", "debug", "sluice"))


_handed_out = set()


def free_port():
    # A port the kernel calls free, never one handed out before in this run: two calls in a row
    # can get the same port back (a node's protocol and HTTP ports collided once in CI here).
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class SluiceProcess:
    """One sluice serve process; start/stop/restart keep the same port and data dir."""

    def __init__(self, data_dir, extra_args=()):
        self.port = free_port()
        # Every process its own operating port (the default, 7380, would collide).
        self.http_port = free_port()
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(data_dir, "sluice.log")
        self.preexec = None  # e.g. lower the open-files limit before exec

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [SLUICE_BIN, "serve", "--port", str(self.port), "--data-dir", self.data_dir,
             *([] if "--http-port" in self.extra_args else ["--http-port", str(self.http_port)]), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self.preexec,
            # NIO's strict mode turns misuse it would only warn about (a task scheduled on a loop
            # that has shut down) into a crash the tests see.
            env={**os.environ, "SWIFTNIO_STRICT": "1"},
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluice exited early:\n" + open(self.log_path).read())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                # The operating port opens just after the protocol port. The probe asks for the
                # server to close (it has counted the connection gone by the time we read EOF): a
                # probe closed from this side could still be counted when a test opens its own
                # connections (the HTTP connection-bound test saw two closed instead of one).
                if "--http-port" not in self.extra_args:
                    with socket.create_connection(("127.0.0.1", self.http_port), timeout=2) as probe:
                        probe.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                        while probe.recv(4096):
                            pass
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sluice did not start listening")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode

    def http(self, path, headers=None, method="GET"):
        """(status, headers, body) of a request to the operating port."""
        import urllib.error
        import urllib.request
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def client(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10, **kw)


def as_dict(reply):
    """STATS is a map: a dict over RESP3, a flat [k, v, ...] list over RESP2."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2]))


def run_together(n, work, timeout=60):
    """Runs work(index) on n threads released at the same moment; returns their results."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return results


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    return request.param


@pytest.fixture
def data_dir():
    d = tempfile.mkdtemp(prefix="sluice-e2e-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def sluice(data_dir):
    s = SluiceProcess(data_dir).start()
    yield s
    s.stop()


@pytest.fixture
def make_sluice(data_dir):
    made = []

    def make(*args):
        s = SluiceProcess(tempfile.mkdtemp(prefix="sluice-e2e-", dir=data_dir), args)
        made.append(s)
        return s

    yield make
    for s in made:
        try:
            s.stop()
        except Exception:
            pass


@pytest.fixture
def real_redis(protocol):
    port = os.environ.get("SLUICE_TEST_REDIS_PORT")
    if not port:
        pytest.skip("no redis-server (scripts/test.sh starts one)")
    r = redis.Redis(host="127.0.0.1", port=int(port), socket_timeout=10, protocol=protocol)
    r.flushall()
    return r


class RedisServerProcess:
    """A redis-server of the test's own on a free port, so the test can kill and restart it."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"


@pytest.fixture
def redis_server(data_dir):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed (scripts/test.sh installs it)")
    r = RedisServerProcess(data_dir).start()
    yield r
    r.kill()


def wait_for(condition, timeout, step=0.005):
    """Polls until condition() is true; returns the seconds it took, or None on timeout."""
    start = time.time()
    while time.time() - start < timeout:
        if condition():
            return time.time() - start
        time.sleep(step)
    return None


class RedisClusterProcess:
    """A real Redis Cluster on loopback: three masters with one replica each
    (`redis-server --cluster-enabled yes`, then `redis-cli --cluster create`), a short
    node timeout so a killed master fails over in seconds."""

    def __init__(self, workdir, masters=3, replicas=1, node_timeout_ms=2000):
        self.workdir = workdir
        self.count = masters * (1 + replicas)
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.ports = [self.cluster_port() for _ in range(self.count)]
        self.procs = {}

    @staticmethod
    def cluster_port():
        """A free port whose cluster bus port (+10000) is free and valid too."""
        import random
        for _ in range(200):
            p = random.randint(20000, 45000)
            try:
                for q in (p, p + 10000):
                    with socket.socket() as s:
                        s.bind(("127.0.0.1", q))
                return p
            except OSError:
                continue
        raise RuntimeError("no free port pair")

    def start_node(self, port):
        d = os.path.join(self.workdir, f"node-{port}")
        os.makedirs(d, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", os.path.join(d, "nodes.conf"), "--cluster-node-timeout", str(self.node_timeout_ms),
             "--save", "", "--appendonly", "no", "--dir", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        for p in self.ports:
            self.start_node(p)
        for p in self.ports:
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", p), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.02)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        deadline = time.time() + 30
        while time.time() < deadline:
            # Up, and every replica in sync with its master: a replica that never synced is not
            # allowed to take over, and a failover test would wait for nothing.
            if all(self.info(p).get("cluster_state") == "ok" for p in self.ports) and all(self.replica_ok(p) for p in self.ports):
                return self
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok with its replicas in sync")

    def replica_ok(self, port):
        try:
            info = redis.Redis(port=port, socket_timeout=1).info("replication")
        except Exception:
            return False
        if info.get("role") != "slave":
            return True
        return info.get("master_link_status") == "up" and not info.get("master_sync_in_progress")

    def info(self, port):
        try:
            text = redis.Redis(port=port, socket_timeout=1).execute_command("CLUSTER", "INFO").decode()
        except Exception:
            return {}
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def master_of(self, key):
        """The port of the master that owns key's slot now."""
        for port in self.ports:
            if self.procs[port].poll() is not None:
                continue
            try:
                r = redis.Redis(port=port, socket_timeout=1)
                slot = r.execute_command("CLUSTER", "KEYSLOT", key)
                for first, last, master, *_ in r.execute_command("CLUSTER", "SLOTS"):
                    if first <= slot <= last:
                        return int(master[1])
            except Exception:
                continue
        return None

    def kill(self, port):
        p = self.procs[port]
        if p.poll() is None:
            p.kill()
            p.wait()

    def stop(self):
        for port in list(self.procs):
            self.kill(port)

    @property
    def url(self):
        return "redis://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)


@pytest.fixture
def redis_cluster(data_dir):
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server / redis-cli not installed (scripts/test.sh installs them)")
    c = RedisClusterProcess(tempfile.mkdtemp(prefix="cluster-", dir=data_dir))
    try:
        c.start()
    except BaseException:
        c.stop()  # a cluster that did not come up must not outlive the test
        raise
    yield c
    c.stop()
