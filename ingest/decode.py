"""Turn one MQTT message into line-protocol points, or a dead letter with a reason.

Pure and synchronous: no I/O, so it is tested exhaustively without servers and
can never take a worker down. Every rejection carries a stable `code` (counted
in metrics, used by tests) and a human `reason`.

Schema (SPEC §5): measurement = kind; tags station, device; fields = the data
fields plus seq; time = ts in ms. Float fields are always written as floats,
so `1532` and `1532.5` never conflict in InfluxDB's field types.

A replay array is checked reading by reading: the good ones are written and
only the bad ones refused, as one dead letter naming their indexes (a box
whose clock ran ahead must not lose the 99 readings around the bad one).

Events: the tag `type` holds one of the types Waystation knows (`EventType`);
any other type a device sends is stored under `type=other` with the device's
own word in the field `event_type`, so one device cannot grow InfluxDB's
series index without bound (SPEC §5: tag cardinality bounded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic_core import from_json, to_json

from waystation.contract import (
    MAX_BATCH_READINGS,
    Channel,
    ContractError,
    DeadLetterCode,
    EventType,
    Kind,
    Reading,
    StatusState,
    parse_event,
    parse_readings,
    parse_status,
    parse_topic,
)
from waystation.lineprotocol import FieldValue, LineProtocolError, encode_line
from waystation.registry import Registry

__all__ = ["OTHER_EVENT_TYPE", "DeadLetter", "Decoded", "Decoder", "TimeWindow"]

# Past this, a payload is refused before JSON parsing (a full replay array of
# 1000 readings is about 200 KiB).
MAX_PAYLOAD_BYTES = 512 * 1024
# The `type` tag of an event whose type Waystation does not know.
OTHER_EVENT_TYPE = "other"
_KNOWN_EVENT_TYPES = frozenset(EventType)
# A partial refusal's reason names at most this many of the refused readings.
_REASONS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class DeadLetter:
    code: DeadLetterCode
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded:
    lines: list[str]
    readings: int
    newest_ts_ms: int
    # Some readings of an array were refused (the rest are in `lines`): their letter.
    refused: DeadLetter | None = field(default=None, kw_only=True)


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
        try:
            readings: list[Reading | ContractError] = list(parse_readings(payload))
        except ContractError:
            each = _each_reading(payload)
            if each is None:  # not an array of readings at all: the message is refused
                raise
            readings = each
        lines: list[str] = []
        refused: list[tuple[int, DeadLetter]] = []
        newest = 0
        for i, r in enumerate(readings):
            problem = self._problem(r, kind, tags, now_ms)
            if problem is not None:
                refused.append((i, problem))
                continue
            assert not isinstance(r, ContractError)  # noqa: S101 - _problem said so
            lines.append(encode_line(str(r.kind), tags, _fields(r.data, r.seq), r.ts))
            newest = max(newest, r.ts)
        if not refused:
            return Decoded(lines, len(readings), newest)
        letter = _partial_letter(refused, len(readings))
        if not lines:
            return letter
        return Decoded(lines, len(lines), newest, refused=letter)

    def _problem(
        self, r: Reading | ContractError, kind: Kind, tags: dict[str, str], now_ms: int
    ) -> DeadLetter | None:
        if isinstance(r, ContractError):
            return DeadLetter(r.code, r.reason)
        if r.kind != kind:
            return DeadLetter(
                DeadLetterCode.KIND_MISMATCH,
                f"device {tags['device']!r} is a {kind}, payload says {r.kind}",
            )
        if problem := self.window.check(r.ts, now_ms):
            return DeadLetter(DeadLetterCode.TS_OUT_OF_WINDOW, problem)
        return None

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
        event_type = event.type
        if event_type not in _KNOWN_EVENT_TYPES:
            fields["event_type"] = event_type
            event_type = OTHER_EVENT_TYPE
        line = encode_line("event", tags | {"type": event_type}, fields, event.ts)
        return Decoded([line], 1, event.ts)


def _each_reading(payload: bytes) -> list[Reading | ContractError] | None:
    """A JSON array's elements, each parsed as one reading; None if it is no such array."""
    try:
        elements = from_json(payload, allow_inf_nan=False)
    except ValueError:
        return None
    if not isinstance(elements, list) or not 1 < len(elements) <= MAX_BATCH_READINGS:
        return None
    out: list[Reading | ContractError] = []
    for element in elements:
        if not isinstance(element, dict):
            return None  # not readings: the array's own error says it best
        try:
            [reading] = parse_readings(to_json(element))
        except ContractError as exc:
            out.append(exc)
        else:
            out.append(reading)
    return out


def _partial_letter(refused: list[tuple[int, DeadLetter]], total: int) -> DeadLetter:
    """One letter for the refused readings of an array: the first one's code, each one's reason."""
    if total == 1:
        return refused[0][1]
    shown = "; ".join(f"[{i}] {d.reason}" for i, d in refused[:_REASONS_SHOWN])
    more = f" (+{len(refused) - _REASONS_SHOWN} more)" if len(refused) > _REASONS_SHOWN else ""
    return DeadLetter(
        refused[0][1].code, f"{len(refused)} of {total} readings refused: {shown}{more}"
    )
