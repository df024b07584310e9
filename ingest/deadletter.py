"""Where refused input goes: a counter per reason, an MQTT topic, a JSON-lines file, InfluxDB.

Total and bounded (SPEC §6), whatever the refused message held:

- every text taken from the input (reason, topic) is made printable and one
  line (control characters, line breaks and lone surrogates become escapes)
  and cut to a few hundred characters before it reaches JSON or line protocol;
- the letter published to `waystation/deadletter/{code}` is at most
  MAX_LETTER_BYTES, well under the broker's packet limit: the payload is cut
  to an excerpt, with its full length and SHA-256 recorded;
- the dead-letter file gets the whole payload (base64 when it is not UTF-8),
  so an operator can fix the device or the registry and replay it; the file
  rotates past MAX_FILE_BYTES, keeping one previous file;
- publishing and filing are tried separately and never raise: a letter the
  broker cannot take is still filed, and the message is acknowledged anyway;
  a letter the broker refuses (an MQTT 5 PUBACK >= 0x80, e.g. an ACL without
  `waystation/deadletter/#`) is a WARNING once per reason, then counted.

For InfluxDB, `DeadLetterTally` sums a batch's dead letters per code into
one `deadletter` point each (field `count`), stamped with a time no earlier
than the previous one of this worker plus a millisecond and tagged with the
worker, so no two points overwrite each other and `sum("count")` is what
ingest counted.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from waystation.contract import (
    DEADLETTER_PREFIX,
    DeadLetterCode,
    deadletter_json,
    deadletter_topic,
    everything_under,
)
from waystation.lineprotocol import encode_line
from waystation.mqttreasons import hint, is_failure, reason_name

__all__ = [
    "EXCERPT_BYTES",
    "MAX_LETTER_BYTES",
    "DeadLetterSink",
    "DeadLetterTally",
    "letter_json",
    "printable",
]

log = logging.getLogger(__name__)

# The file rotates past this size, keeping one previous file.
MAX_FILE_BYTES = 64 * 1024 * 1024
# A published letter never exceeds this (Mosquitto's shipped max_packet_size is 1 MiB;
# a bigger packet makes it drop the publisher's connection).
MAX_LETTER_BYTES = 16 * 1024
# How much of the payload a published letter quotes before the cap shrinks it further.
EXCERPT_BYTES = 4 * 1024
MAX_REASON_CHARS = 500
MAX_TOPIC_CHARS = 256

# C0 and C1 controls (line breaks among them), the Unicode line and paragraph
# separators, and lone surrogates (which cannot be encoded as UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, limit: int) -> str:
    """`text` on one printable line, at most `limit` characters before escaping (≤ 6 x after)."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return _UNSAFE.sub(_escape, cut)


def _utf8_prefix(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def letter_json(
    code: DeadLetterCode,
    reason: str,
    topic: str,
    payload: bytes,
    received_ms: int,
    *,
    excerpt_bytes: int | None,
) -> bytes:
    """A dead letter as UTF-8 JSON; with `excerpt_bytes`, capped at MAX_LETTER_BYTES."""
    try:
        text: str | None = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    fields: dict[str, Any] = {
        "code": code,
        "reason": printable(reason, MAX_REASON_CHARS),
        "topic": printable(topic, MAX_TOPIC_CHARS),
        "received_ms": received_ms,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    limit = len(payload) if excerpt_bytes is None else min(excerpt_bytes, len(payload))
    while True:
        cut = limit < len(payload)
        out = deadletter_json(
            **fields,
            payload=None if text is None else _utf8_prefix(text, limit) if cut else text,
            payload_b64=None if text is not None else base64.b64encode(payload[:limit]).decode(),
            truncated=cut,
        )
        if excerpt_bytes is None or len(out) <= MAX_LETTER_BYTES or limit == 0:
            return out
        limit //= 2  # escapes (control characters: 6 bytes each) made it too big


class _Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int) -> Any: ...


class DeadLetterSink:
    """Thread-safe. `record` never raises: a broken sink must not stop ingest."""

    def __init__(self, publisher: _Publisher | None, path: Path | None) -> None:
        self._publisher = publisher
        self._path = path
        self._lock = threading.Lock()
        self.counts: Counter[DeadLetterCode] = Counter()
        self.refused: Counter[int] = Counter()  # letters the broker refused, by PUBACK reason
        self._failed: set[str] = set()  # sinks whose failure was logged (once each)

    def published(self, code: int) -> None:
        """The broker's PUBACK of a letter: a refusal is said once per reason, then counted."""
        if not is_failure(code):
            return
        with self._lock:
            first = code not in self.refused
            self.refused[code] += 1
        if first:
            why = hint(code)
            log.warning(
                "the broker refused a dead letter: %s%s; dead letters are still filed and "
                "counted, but not published (let ingest's account publish to %s)",
                reason_name(code),
                f" ({why})" if why else "",
                everything_under(DEADLETTER_PREFIX),
            )

    def record(
        self, code: DeadLetterCode, reason: str, topic: str, payload: bytes, received_ms: int
    ) -> None:
        with self._lock:
            first = code not in self.counts
            self.counts[code] += 1
        if first:
            log.warning(
                "dead letter (%s) on %s: %s",
                code,
                printable(topic, MAX_TOPIC_CHARS),
                printable(reason, MAX_REASON_CHARS),
            )
        if self._publisher is not None:
            try:
                letter = letter_json(
                    code, reason, topic, payload, received_ms, excerpt_bytes=EXCERPT_BYTES
                )
                self._publisher.publish(deadletter_topic(code), letter, qos=1)
            except Exception:  # a task boundary: the file still gets it, the message its ack
                if self._first_failure("publish"):
                    log.exception("could not publish a dead letter (%s); it is filed", code)
        if self._path is not None:
            try:
                letter = letter_json(code, reason, topic, payload, received_ms, excerpt_bytes=None)
                self._append(letter)
            except Exception:  # a full disk, a read-only file: counted, logged once
                if self._first_failure("file"):
                    log.exception("could not file a dead letter (%s); counting goes on", code)

    def _first_failure(self, sink: str) -> bool:
        with self._lock:
            first = sink not in self._failed
            self._failed.add(sink)
        return first

    def _append(self, line: bytes) -> None:
        assert self._path is not None  # noqa: S101 - guarded by the caller
        with self._lock:
            if self._path.exists() and self._path.stat().st_size > MAX_FILE_BYTES:
                self._path.replace(self._path.with_suffix(self._path.suffix + ".1"))
            with self._path.open("ab") as f:
                f.write(line + b"\n")


def _tag(text: str) -> str:
    """A tag value line protocol always takes: printable, not empty, no trailing backslash."""
    return printable(text, 64).rstrip("\\") or "-"


@dataclass
class _Example:
    count: int
    topic: str
    reason: str


class DeadLetterTally:
    """A batch's dead letters per code, as `deadletter` points that add up. Writer thread only."""

    def __init__(self, worker: str) -> None:
        self.worker = _tag(worker)
        self._codes: dict[DeadLetterCode, _Example] = {}
        self._last_ms = 0

    def __bool__(self) -> bool:
        return bool(self._codes)

    def add(self, code: DeadLetterCode, topic: str, reason: str) -> None:
        seen = self._codes.get(code)
        if seen is None:
            self._codes[code] = _Example(1, topic, reason)
        else:
            seen.count += 1

    def take_lines(self, now_ms: int) -> list[str]:
        """One point per code (the count, and the first letter's topic and reason); resets."""
        # Later than this worker's previous points: a point never overwrites another.
        at = max(now_ms, self._last_ms + 1)
        self._last_ms = at
        lines = [
            encode_line(
                "deadletter",
                {"code": _tag(code), "worker": self.worker},
                {
                    "count": ex.count,
                    "topic": printable(ex.topic, MAX_TOPIC_CHARS),
                    "reason": printable(ex.reason, MAX_REASON_CHARS),
                },
                at,
            )
            for code, ex in self._codes.items()
        ]
        self._codes.clear()
        return lines
