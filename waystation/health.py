"""A small HTTP endpoint for a service: `/healthz` (alive), `/readyz` (ready), `/metrics`.

Runs in its own daemon thread (stdlib `ThreadingHTTPServer`); reads the
service's state, never changes it. `/metrics` is prometheus_client's own
exposition of the service's collector (the text format, or OpenMetrics when
the scraper asks for it). Binds 127.0.0.1 unless told otherwise. Ingest,
the rules and the edge agent each serve one.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Protocol
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, MetricsHandler
from prometheus_client.registry import Collector

__all__ = ["HealthServer", "Observable"]


class Observable(Protocol):
    """What the endpoint reads from a service. Called from the HTTP thread."""

    @property
    def alive(self) -> bool: ...

    @property
    def ready(self) -> bool: ...

    @property
    def collector(self) -> Collector:
        """The service's metrics, read at each scrape."""


class HealthServer:
    def __init__(
        self, service: Observable, port: int, host: str = "127.0.0.1", name: str = "health"
    ) -> None:
        outer = service
        metrics = CollectorRegistry(auto_describe=False)
        metrics.register(service.collector)

        class Handler(MetricsHandler):
            registry = metrics

            def do_GET(self) -> None:  # noqa: N802 - the handler's name for GET
                path = urlsplit(self.path).path
                if path == "/healthz":
                    ok = outer.alive
                    self._reply(200 if ok else 503, "ok\n" if ok else "stopped\n")
                elif path == "/readyz":
                    ok = outer.ready
                    self._reply(200 if ok else 503, "ready\n" if ok else "not ready\n")
                elif path == "/metrics":
                    super().do_GET()
                else:
                    self._reply(404, "try /healthz, /readyz or /metrics\n")

            def _reply(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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
