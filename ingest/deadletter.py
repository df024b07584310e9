"""Where refused input goes: a counter per reason, an MQTT topic and a JSON-lines file.

A dead letter keeps the original payload (base64 when it is not UTF-8), so an
operator can fix the device or the registry and replay it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Protocol

from ingest.decode import DeadLetter
from waystation.lineprotocol import encode_line

__all__ = ["DEADLETTER_TOPIC", "DeadLetterSink", "deadletter_line"]

log = logging.getLogger(__name__)

DEADLETTER_TOPIC = "waystation/deadletter"
# The file rotates past this size, keeping one previous file.
MAX_FILE_BYTES = 64 * 1024 * 1024


class _Publisher(Protocol):
    def publish(self, topic: str, payload: str, qos: int) -> Any: ...


class DeadLetterSink:
    """Thread-safe. `record` never raises: a broken sink must not stop ingest."""

    def __init__(self, publisher: _Publisher | None, path: Path | None) -> None:
        self._publisher = publisher
        self._path = path
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def record(self, code: str, reason: str, topic: str, payload: bytes, received_ms: int) -> None:
        with self._lock:
            first = code not in self.counts
            self.counts[code] += 1
        if first:
            log.warning("dead letter (%s) on %s: %s", code, topic, reason)
        try:
            text: str | None = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        letter = {
            "code": code,
            "reason": reason,
            "topic": topic,
            "received_ms": received_ms,
            "payload": text if text is not None else None,
            "payload_b64": None if text is not None else base64.b64encode(payload).decode(),
        }
        line = json.dumps(letter, ensure_ascii=False)
        try:
            if self._publisher is not None:
                self._publisher.publish(f"{DEADLETTER_TOPIC}/{code}", line, qos=1)
            if self._path is not None:
                self._append(line)
        except Exception:
            log.exception("could not record a dead letter (%s)", code)

    def _append(self, line: str) -> None:
        assert self._path is not None  # noqa: S101 - guarded by the caller
        with self._lock:
            if self._path.exists() and self._path.stat().st_size > MAX_FILE_BYTES:
                self._path.replace(self._path.with_suffix(self._path.suffix + ".1"))
            with self._path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")


def deadletter_line(letter: DeadLetter, topic: str, received_ms: int) -> str:
    """A `deadletter` point: the code as tag (a bounded set), topic and reason as fields."""
    return encode_line(
        "deadletter",
        {"code": letter.code},
        {"count": 1, "topic": topic[:200], "reason": letter.reason[:500]},
        received_ms,
    )
