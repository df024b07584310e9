"""A webhook receiver inside the demo: what an operators' chat group would be sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["NoticeReceiver"]


class NoticeReceiver:
    """Collects the rules service's webhook bodies and hands each to `on_notice`."""

    def __init__(self, on_notice: Callable[[dict[str, Any]], None]) -> None:
        self.bodies: list[dict[str, Any]] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    receiver.bodies.append(body)
                on_notice(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/waystation"

    def seen(self, state: str, rule: str) -> set[str]:
        """Stations with a notice of `rule` in `state` (firing or resolved)."""
        return {
            n["station"]
            for body in list(self.bodies)
            for n in body["notices"]
            for a in n[state]
            if a["rule"] == rule
        }

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
