"""Real peers for the notification channels, and edge agents as killable processes.

`HookServer` is an HTTP server on loopback that records every request and
answers as the chat robots do (`{"errcode": 0}` / `{"code": 0}`), or fails on
demand. `SmtpPeer` is an aiosmtpd server that requires STARTTLS with a
certificate from the test CA. `EdgeProcess` runs `waystation edge` on an
agent config, so a test can SIGKILL it like a power cut and start it again.
"""

from __future__ import annotations

import json
import os
import signal
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

from waystation.localservers import free_port


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
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with peer._lock:
                    failing = peer.fail.get(url.path, 0)
                    if failing:
                        peer.fail[url.path] = failing - 1
                    else:
                        peer.hooks.append(Hook(url.path, dict(parse_qsl(url.query)), body))
                self.send_response(500 if failing else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode": 0, "code": 0, "errmsg": "ok"}')

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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

    async def handle_DATA(self, _server: Any, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
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
            return AuthResult(success=ok)

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
        self.args = [sys.executable, "-m", "waystation.cli", "edge", "--mqtt", mqtt_url,
                     "--agent-config", str(self.config), "--log-level", "WARNING"]  # fmt: skip
        self.log = workdir / f"{agent_device}.log"


class RulesProcess(_Child):
    """`waystation rules` in a child process, to be killed with SIGKILL and started again."""

    def __init__(self, workdir: Path, args: list[str]) -> None:
        self.args = [sys.executable, "-m", "waystation.cli", "rules", *args]
        self.log = workdir / "rules.log"
