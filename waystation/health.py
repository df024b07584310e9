"""A small HTTP endpoint for a service: `/healthz` (alive), `/readyz` (ready), `/metrics`.

Runs in its own daemon thread (stdlib `ThreadingHTTPServer`); reads the
service's state, never changes it. Binds 127.0.0.1 unless told otherwise.
Ingest, rules and the edge agent each serve one.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

__all__ = ["HealthServer", "Observable"]


class Observable(Protocol):
    """What the endpoint reads from a service. Called from the HTTP thread."""

    @property
    def alive(self) -> bool: ...

    @property
    def ready(self) -> bool: ...

    def metrics_text(self) -> str: ...


class HealthServer:
    def __init__(
        self, service: Observable, port: int, host: str = "127.0.0.1", name: str = "health"
    ) -> None:
        outer = service

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    ok = outer.alive
                    self._reply(200 if ok else 503, "ok\n" if ok else "stopped\n")
                elif self.path == "/readyz":
                    ok = outer.ready
                    self._reply(200 if ok else 503, "ready\n" if ok else "not ready\n")
                elif self.path == "/metrics":
                    self._reply(200, outer.metrics_text(), "text/plain; version=0.0.4")
                else:
                    self._reply(404, "try /healthz, /readyz or /metrics\n")

            def _reply(self, status: int, body: str, ctype: str = "text/plain") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:  # scrapes are not news
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
