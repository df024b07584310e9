"""Turn one MQTT message into line-protocol points, or a dead letter with a reason.

Pure and synchronous: no I/O, so it is tested exhaustively without servers and
can never take a worker down. Every rejection carries a stable `code` (counted
in metrics, used by tests) and a human `reason`.

Schema (SPEC §5): measurement = kind; tags station, device; fields = the data
fields plus seq; time = ts in ms. Float fields are always written as floats,
so `1532` and `1532.5` never conflict in InfluxDB's field types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from waystation.contract import (
    Channel,
    ContractError,
    DeadLetterCode,
    Kind,
    StatusState,
    parse_event,
    parse_readings,
    parse_status,
    parse_topic,
)
from waystation.lineprotocol import FieldValue, LineProtocolError, encode_line
from waystation.registry import Registry

__all__ = ["DeadLetter", "Decoded", "Decoder", "TimeWindow"]

# Past this, a payload is refused before JSON parsing (a full replay array of
# 1000 readings is about 200 KiB).
MAX_PAYLOAD_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    code: DeadLetterCode
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded:
    lines: list[str]
    readings: int
    newest_ts_ms: int


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Readings older than `max_age` or further than `max_ahead` in the future are refused."""

    max_age: timedelta = timedelta(days=400)
    max_ahead: timedelta = timedelta(minutes=10)

    def check(self, ts_ms: int, now_ms: int) -> str | None:
        if ts_ms < now_ms - self.max_age.total_seconds() * 1000:
            return f"ts {ts_ms} is more than {self.max_age} in the past"
        if ts_ms > now_ms + self.max_ahead.total_seconds() * 1000:
            return f"ts {ts_ms} is more than {self.max_ahead} in the future"
        return None


def _fields(data: Any, seq: int) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = {k: v for k, v in data.model_dump().items() if v is not None}
    fields["seq"] = seq
    return fields


class Decoder:
    def __init__(self, registry: Registry, window: TimeWindow | None = None) -> None:
        self.registry = registry
        self.window = window or TimeWindow()

    def decode(self, topic: str, payload: bytes, now_ms: int) -> Decoded | DeadLetter:
        try:
            return self._decode(topic, payload, now_ms)
        except ContractError as exc:
            return DeadLetter(exc.code, exc.reason)
        except LineProtocolError as exc:
            return DeadLetter(DeadLetterCode.UNENCODABLE, str(exc))

    def _decode(self, topic: str, payload: bytes, now_ms: int) -> Decoded | DeadLetter:
        if len(payload) > MAX_PAYLOAD_BYTES:
            return DeadLetter(
                DeadLetterCode.OVERSIZED,
                f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}",
            )
        t = parse_topic(topic)
        known = self.registry.device(t.device)
        if known is None:
            return DeadLetter(
                DeadLetterCode.UNKNOWN_DEVICE, f"device {t.device!r} is not in the registry"
            )
        station, spec = known
        if station != t.station:
            return DeadLetter(
                DeadLetterCode.WRONG_STATION,
                f"device {t.device!r} belongs to {station!r}, not {t.station!r}",
            )
        tags = {"station": station, "device": t.device}
        if t.channel is Channel.TELEMETRY:
            return self._telemetry(payload, spec.kind, tags, now_ms)
        if t.channel is Channel.STATUS:
            return self._status(payload, tags, now_ms)
        return self._event(payload, tags, now_ms)

    def _telemetry(
        self, payload: bytes, kind: Kind, tags: dict[str, str], now_ms: int
    ) -> Decoded | DeadLetter:
        readings = parse_readings(payload)
        lines = []
        for r in readings:
            if r.kind != kind:
                return DeadLetter(
                    DeadLetterCode.KIND_MISMATCH,
                    f"device {tags['device']!r} is a {kind}, payload says {r.kind}",
                )
            if problem := self.window.check(r.ts, now_ms):
                return DeadLetter(DeadLetterCode.TS_OUT_OF_WINDOW, problem)
            lines.append(encode_line(str(r.kind), tags, _fields(r.data, r.seq), r.ts))
        return Decoded(lines, len(readings), max(r.ts for r in readings))

    def _status(self, payload: bytes, tags: dict[str, str], now_ms: int) -> Decoded | DeadLetter:
        status = parse_status(payload)
        if problem := self.window.check(status.ts, now_ms):
            return DeadLetter(DeadLetterCode.TS_OUT_OF_WINDOW, problem)
        fields: dict[str, FieldValue] = {
            "online": 1 if status.state is StatusState.ONLINE else 0,
            "agent": status.agent,
        }
        return Decoded([encode_line("device_status", tags, fields, status.ts)], 1, status.ts)

    def _event(self, payload: bytes, tags: dict[str, str], now_ms: int) -> Decoded | DeadLetter:
        event = parse_event(payload)
        if problem := self.window.check(event.ts, now_ms):
            return DeadLetter(DeadLetterCode.TS_OUT_OF_WINDOW, problem)
        fields: dict[str, FieldValue] = {
            "seq": event.seq,
            "detail": json.dumps(event.detail, ensure_ascii=False, sort_keys=True),
        }
        line = encode_line("event", tags | {"type": event.type}, fields, event.ts)
        return Decoded([line], 1, event.ts)
