"""Real peers for the notification channels, and edge agents as killable processes.

`HookServer` is an HTTP server on loopback that records every request and
answers as the chat robots do (`{"errcode": 0}` / `{"code": 0}`), or fails on
demand. `SmtpPeer` is an aiosmtpd server that requires STARTTLS with a
certificate from the test CA. `EdgeProcess` runs `waystation edge` on an
agent config, so a test can SIGKILL it like a power cut and start it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from prometheus_client.parser import text_string_to_metric_families

from app.localservers import free_port
from tests.helpers import http_get, wait_for

OK = {"errcode": 0, "code": 0, "errmsg": "ok"}  # every robot's "delivered"


@dataclass
class Hook:
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class HookServer:
    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self.fail: dict[str, int] = {}  # path → how many requests to fail with 500
        self.fail_until: dict[str, float] = {}  # path → answer 500 until this monotonic time
        self.hang_until: dict[str, float] = {}  # path → never answer until this monotonic time
        self.answer: dict[str, tuple[int, dict[str, Any]]] = {}  # path → (status, body) instead
        self.slow: dict[str, float] = {}  # path → take the message, answer this many s later
        self.attempts: dict[str, int] = {}  # path → requests received, failed or not
        self.open_now = 0  # hung requests whose client still holds the connection
        self.open_most = 0
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with peer._lock:
                    peer.attempts[url.path] = peer.attempts.get(url.path, 0) + 1
                if time.monotonic() < peer.hang_until.get(url.path, 0):
                    peer._hang(self.connection, peer.hang_until[url.path])
                    return
                with peer._lock:
                    answer = peer.answer.get(url.path)
                    failing = peer.fail.get(url.path, 0)
                    if answer is not None:
                        pass  # refused (or a robot's error code): not a delivery
                    elif failing:
                        peer.fail[url.path] = failing - 1
                    elif time.monotonic() < peer.fail_until.get(url.path, 0):
                        failing = 1
                    else:
                        peer.hooks.append(Hook(url.path, dict(parse_qsl(url.query)), body))
                status, reply = answer or (500 if failing else 200, OK)
                time.sleep(peer.slow.get(url.path, 0.0))  # a peer that plays slow on purpose
                # A client that gave up on a slow answer has closed the connection.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps(reply).encode())

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # Polled every 50 ms for shutdown (the default half second is every test's teardown).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _hang(self, conn: socket.socket, until: float) -> None:
        """Answer nothing; count the connection as held until the client closes it."""
        with self._lock:
            self.open_now += 1
            self.open_most = max(self.open_most, self.open_now)
        try:
            while time.monotonic() < until:
                readable, _, _ = select.select([conn], [], [], 0.1)
                if readable and not conn.recv(1, socket.MSG_PEEK):
                    return  # the client gave up and closed it
        except OSError:
            return
        finally:
            with self._lock:
                self.open_now -= 1

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def on(self, path: str) -> list[Hook]:
        with self._lock:
            return [h for h in self.hooks if h.path == path]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.answer: str | None = None  # a failure to answer instead, e.g. "451 try later"

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.answer is not None:
            return self.answer
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content, policy=policy.default))
        return "250 OK"


class SmtpPeer:
    """An SMTP server on loopback that takes mail only after STARTTLS and a login."""

    def __init__(self, cert: Path, key: Path, login: tuple[str, str]) -> None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        self.inbox = _Inbox()
        self.port = free_port()
        self.logins: list[str] = []

        def authenticator(
            _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == login
            )
            if ok:
                self.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)  # a refusal is answered: 535

        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            authenticator=authenticator,
        )

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()


class SilentServer:
    """Takes TCP connections and never says a word: a hung SMTP server, say."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            self._held.append(conn)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._sock.close()
        for conn in self._held:
            conn.close()


class _Child:
    """A `waystation` command in a child process, to be SIGKILLed and started again."""

    args: list[str]
    log: Path
    _proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def kill9(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()


class EdgeProcess(_Child):
    """`waystation edge --agent-config` for some of a station's devices, all simulated."""

    def __init__(
        self,
        workdir: Path,
        mqtt_url: str,
        station: str,
        agent_device: str,
        devices: dict[str, dict[str, Any]],
        interval: str = "0.5s",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / f"{agent_device}.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "station": station,
                    "agent_device": agent_device,
                    "gateway_interval": interval,
                    "outbox": {"path": str(workdir / f"{agent_device}.db")},
                    "devices": {
                        d: {**spec, "interval": interval, "driver": {"type": "simulator"}}
                        for d, spec in devices.items()
                    },
                }
            ),
            encoding="utf-8",
        )
        self.args = [sys.executable, "-m", "app.cli", "edge", "--mqtt", mqtt_url,
                     "--agent-config", str(self.config), "--log-level", "WARNING"]  # fmt: skip
        self.log = workdir / f"{agent_device}.log"


class RulesProcess(_Child):
    """`waystation rules` in a child process, to be killed with SIGKILL and started again.

    It serves its metrics on a port of its own, so a test waits on its passes.
    """

    def __init__(self, workdir: Path, args: list[str], log_level: str = "INFO") -> None:
        self.health_port = free_port()
        self.args = [sys.executable, "-m", "app.cli", "rules", *args,
                     "--health-port", str(self.health_port), "--log-level", log_level]  # fmt: skip
        self.log = workdir / "rules.log"

    def metrics(self) -> dict[str, float]:
        """`/metrics` as {name{labels}: value}; {} while it does not answer."""
        try:
            _, text = http_get(self.health_port, "/metrics")
        except OSError:
            return {}
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def passes(self) -> float:
        """Detection passes run by this process (0 while it does not answer)."""
        return self.metrics().get("waystation_rules_passes_total", 0)

    def run_passes_with_verdicts(self, n: int, timeout_s: float = 30) -> None:
        """Wait until it gives verdicts (connected, grace over), then for `n` more passes.

        What a test waits on to show that nothing happened: passes that could have
        raised or sent something, counted by the service itself.
        """
        verdicts = "waystation_rules_verdicts"
        wait_for(lambda: self.metrics().get(verdicts) == 1, "the rules giving verdicts", timeout_s)
        start = self.passes()
        wait_for(lambda: self.passes() >= start + n, f"{n} passes with verdicts", timeout_s)

    def http(self, path: str) -> int:
        """The status of GET `path` on its health port (0: no answer)."""
        try:
            return http_get(self.health_port, path)[0]
        except OSError:
            return 0

    def log_lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines()
