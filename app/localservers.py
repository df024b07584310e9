"""Real Mosquitto and InfluxDB 1.x servers in a temporary directory.

Used by `waystation demo` and by the test fixtures: each server gets a free
loopback port, its own config and data directory, and is stopped (or killed,
for fault tests) and restarted for real. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from importlib.resources import files
from pathlib import Path
from typing import IO, Self

__all__ = ["InfluxServer", "LocalServerError", "MosquittoServer", "free_port"]

HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
PORT_ATTEMPTS = 5  # first starts that found their port taken meanwhile


class LocalServerError(RuntimeError):
    """A local server binary is missing or did not start; the message says what to do."""


class _PortTaken(LocalServerError):
    """The server could not bind its port: someone took it after free_port() chose it."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if not found:
        raise LocalServerError(
            f"{name} not found: install the Debian package with `apt-get install {package}` "
            "(./dev does this for you)"
        )
    return found


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


class _Server:
    """A child process with a log file; start/stop/kill/restart keep the same port and data."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._started = False  # once started, the port is known to clients: it stays
        self._log_start = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        return _port_open(self.port)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _choose_ports(self) -> None:
        """New free ports, before the first start (a restart keeps its ports)."""
        self.port = free_port()

    def start(self) -> None:
        if self.running:
            return
        for attempt in range(PORT_ATTEMPTS):
            try:
                self._start_once()
            except _PortTaken:
                # free_port() only finds a port that was free: another process on a
                # busy machine may take it before the server binds it. Before the
                # first start nobody knows the port yet, so another one will do.
                if self._started or attempt == PORT_ATTEMPTS - 1:
                    raise
                self._choose_ports()
            else:
                self._started = True
                return

    def _said_since_start(self) -> str:
        """What the server logged since this start."""
        return self.log_path.read_bytes()[self._log_start :].decode(errors="replace")

    def _start_once(self) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self._command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready():
            if self._proc.poll() is not None:
                self._proc = None
                self._log.close()
                self._log = None
                said = self._said_since_start().lower()
                error = _PortTaken if "address already in use" in said else LocalServerError
                raise error(f"{self.name} exited at start; see {self.log_path}:\n" + self._tail())
            if time.monotonic() > deadline:
                self.kill()
                raise LocalServerError(
                    f"{self.name} not ready after {START_TIMEOUT_S:.0f} s; see {self.log_path}"
                )
            time.sleep(0.05)

    def _tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _wait_gone(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        """Orderly shutdown (SIGTERM): servers save their state."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._ended()

    def kill(self) -> None:
        """SIGKILL: what a power cut or an OOM kill does."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._ended()

    def _ended(self) -> None:
        """After stop or kill: wait until the port is free again, close the log."""
        if self._proc is not None:
            self._proc = None
            self._wait_gone()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class MosquittoServer(_Server):
    """Mosquitto 2.0 with the shipped queue/persistence limits, on loopback.

    Anonymous unless told otherwise; `extra_config` is appended and applies to
    the one listener (certificates, a password file, an ACL file).
    """

    name = "mosquitto"

    def __init__(self, workdir: Path, extra_config: str = "", *, anonymous: bool = True) -> None:
        super().__init__(workdir)
        self.extra_config = extra_config
        self.anonymous = anonymous
        self.binary = _binary("mosquitto", "mosquitto")

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def _ready(self) -> bool:
        # An open port alone could be another process's, taken before ours bound it.
        return super()._ready() and " running" in self._said_since_start()

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password and ACL files and keeps its clients."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

    def _command(self) -> list[str]:
        limits = files("app").joinpath("data/mosquitto-limits.conf").read_text()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"# written by app.localservers\n"
            # As root, Mosquitto would otherwise switch to the `mosquitto` user
            # and lose access to this directory.
            f"user {getpass.getuser()}\n"
            f"listener {self.port} {HOST}\n"
            f"allow_anonymous {'true' if self.anonymous else 'false'}\n"
            f"persistence_location {self.workdir}/\n"
            f"log_dest stdout\n"
            # `information` carries "... running", which says the listener is ours.
            f"log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            f"{limits}\n{self.extra_config}\n"
        )
        return [self.binary, "-c", str(conf)]


class InfluxServer(_Server):
    """InfluxDB 1.x with HTTP and RPC on loopback, no reporting, no internal monitor."""

    name = "influxd"

    def __init__(
        self, workdir: Path, *, max_body_bytes: int = 25_000_000, max_series: int = 1_000_000
    ) -> None:
        super().__init__(workdir)
        self.rpc_port = free_port()
        self.max_body_bytes = max_body_bytes
        self.max_series = max_series  # 1.x's own default; tests lower it to provoke a 400
        self.binary = _binary("influxd", "influxdb")

    def _choose_ports(self) -> None:
        super()._choose_ports()
        self.rpc_port = free_port()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _ready(self) -> bool:
        if not _port_open(self.port):
            return False
        import urllib.request  # noqa: PLC0415 - only needed while starting

        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:  # noqa: S310
                return bool(resp.status == 204)
        except OSError:
            return False

    def _command(self) -> list[str]:
        d = self.workdir
        conf = d / "influxdb.conf"
        conf.write_text(
            f"reporting-enabled = false\n"
            f'bind-address = "{HOST}:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n'
            f"  query-log-enabled = false\n  trace-logging-enabled = false\n"
            f"  max-series-per-database = {self.max_series}\n"
            f"[monitor]\n  store-enabled = false\n"
            f"[subscriber]\n  enabled = false\n"
            f"[continuous_queries]\n  enabled = false\n  log-enabled = false\n"
            f'[http]\n  bind-address = "{HOST}:{self.port}"\n  log-enabled = false\n'
            f"  max-body-size = {self.max_body_bytes}\n"
            f'[logging]\n  level = "warn"\n  suppress-logo = true\n'
        )
        return [self.binary, "-config", str(conf)]
