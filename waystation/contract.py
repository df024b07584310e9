"""The MQTT wire contract (SPEC §4): every topic and message Waystation writes or reads.

One place spells the wire: the topics (`device_topic`, `deadletter_topic`,
`alerts_topic`, the filters), the envelopes (`reading_json`, `status_json`,
`event_json`, `alerts_json`, `deadletter_json`) and the parsers ingest and the
rules validate with (`parse_readings`, `parse_status`, `parse_event`,
`parse_topic`). The edge agent, ingest and the rules all go through here, so
the sides cannot drift apart. The payload models behind it are in
`waystation.payloads`; validation is strict and a refusal carries a stable
`DeadLetterCode`.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from waystation.payloads import (
    CONTRACT_VERSION,
    DATA_MODELS,
    MAX_BATCH_READINGS,
    ONE_READING,
    READING_ARRAY,
    TARIFF_FIELDS,
    TS_MAX_MS,
    TS_MIN_MS,
    AlertItem,
    AlertsMessage,
    Event,
    EventType,
    Kind,
    Reading,
    Status,
    StatusState,
)

__all__ = [
    "ALERTS_PREFIX",
    "CONTRACT_VERSION",
    "DEADLETTER_PREFIX",
    "ID_PATTERN",
    "MAX_BATCH_READINGS",
    "PROBE_PREFIX",
    "STATIONS",
    "STATIONS_FILTER",
    "TARIFF_FIELDS",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "AlertItem",
    "AlertsMessage",
    "Channel",
    "ContractError",
    "DeadLetterCode",
    "Event",
    "EventType",
    "Kind",
    "Reading",
    "Status",
    "StatusState",
    "Topic",
    "alerts_json",
    "alerts_topic",
    "data_fields",
    "deadletter_json",
    "deadletter_topic",
    "device_topic",
    "event_json",
    "everything_under",
    "is_valid_id",
    "parse_event",
    "parse_readings",
    "parse_status",
    "parse_topic",
    "probe_topic",
    "reading_json",
    "readings_array",
    "station_filter",
    "status_json",
    "validate_data",
]

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


class DeadLetterCode(StrEnum):
    """Why ingest refused a message: stable, in the dead letter's topic, metrics and points."""

    BAD_TOPIC = "bad_topic"
    BAD_JSON = "bad_json"
    SCHEMA = "schema"
    UNKNOWN_DEVICE = "unknown_device"
    WRONG_STATION = "wrong_station"
    KIND_MISMATCH = "kind_mismatch"
    TS_OUT_OF_WINDOW = "ts_out_of_window"
    OVERSIZED = "oversized"
    UNENCODABLE = "unencodable"  # valid, but line protocol cannot carry it
    REJECTED_BY_STORE = "rejected_by_store"  # InfluxDB refused its points (a type conflict)
    DECODE_FAILED = "decode_failed"  # a failure of the decoder itself


class ContractError(ValueError):
    """A payload or topic that breaks the contract; `code` is stable, `reason` is for people."""

    def __init__(self, code: DeadLetterCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


# --- topics ---------------------------------------------------------------------

STATIONS = "stations"
# Every station's telemetry, statuses and events: what ingest and the rules subscribe to.
STATIONS_FILTER = f"{STATIONS}/+/+/+"
DEADLETTER_PREFIX = "waystation/deadletter"
ALERTS_PREFIX = "alerts"  # the MQTT alert channel's default prefix
# Each rules worker publishes a probe to itself here and expects it back.
PROBE_PREFIX = "waystation/probe"


def device_topic(station: str, device: str, channel: Channel) -> str:
    """`stations/{station}/{device}/{channel}` (SPEC §4)."""
    return f"{STATIONS}/{station}/{device}/{channel}"


def station_filter(station: str, device: str | None = None) -> str:
    """Everything under a station, or under one of its devices (broker ACLs, narrower feeds)."""
    return f"{STATIONS}/{station}/{device}/#" if device else f"{STATIONS}/{station}/#"


def deadletter_topic(code: DeadLetterCode) -> str:
    return f"{DEADLETTER_PREFIX}/{code}"


def alerts_topic(station: str, rule: str, prefix: str = ALERTS_PREFIX) -> str:
    """`alerts/{station}/{rule}`: retained while the rule fires at the station (SPEC §7)."""
    return f"{prefix}/{station}/{rule}"


def probe_topic(client_id: str) -> str:
    """`waystation/probe/{client id}`: a rules worker's own probe (it may write and read it)."""
    return f"{PROBE_PREFIX}/{client_id}"


def everything_under(prefix: str) -> str:
    """The filter for every topic under a prefix (`alerts/#`)."""
    return f"{prefix}/#"


class Topic(BaseModel):
    model_config = ConfigDict(frozen=True)
    station: str
    device: str
    channel: Channel

    def __str__(self) -> str:
        return device_topic(self.station, self.device, self.channel)


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != STATIONS:
        raise ContractError(
            DeadLetterCode.BAD_TOPIC,
            f"{topic!r} is not stations/{{station}}/{{device}}/{{channel}}",
        )
    _, station, device, channel = parts
    for name, value in (("station", station), ("device", device)):
        if not _ID_RE.match(value):
            raise ContractError(
                DeadLetterCode.BAD_TOPIC, f"{name} id {value!r} does not match {ID_PATTERN}"
            )
    try:
        return Topic(station=station, device=device, channel=Channel(channel))
    except ValueError as exc:
        raise ContractError(DeadLetterCode.BAD_TOPIC, f"unknown channel {channel!r}") from exc


# --- envelopes: what Waystation writes -------------------------------------------


def reading_json(kind: Kind | str, ts_ms: int, seq: int, data: dict[str, Any]) -> str:
    """A reading (compact JSON), for `data` already checked against its kind (`validate_data`).

    Built without a model: the edge agent writes one per reading, and a backfill
    hundreds of thousands at a time.
    """
    reading = {"v": CONTRACT_VERSION, "kind": str(kind), "ts": ts_ms, "seq": seq, "data": data}
    return json.dumps(reading, separators=(",", ":"))


def readings_array(readings: list[str]) -> str:
    """A store-and-forward replay: readings of one device (from `reading_json`) as one array."""
    return readings[0] if len(readings) == 1 else "[" + ",".join(readings) + "]"


def status_json(state: StatusState, ts_ms: int, agent: str) -> str:
    """A device's retained status (the agent's will is its `offline`)."""
    return Status(v=CONTRACT_VERSION, ts=ts_ms, state=state, agent=agent).model_dump_json()


def event_json(ts_ms: int, seq: int, type_: EventType | str, detail: dict[str, Any]) -> str:
    return Event(
        v=CONTRACT_VERSION, ts=ts_ms, seq=seq, type=str(type_), detail=detail
    ).model_dump_json()


def alerts_json(station: str, station_name: str, alerts: list[AlertItem]) -> str:
    """What `alerts/{station}/{rule}` retains while the rule fires, station named in full."""
    message = AlertsMessage(
        v=CONTRACT_VERSION, station=station, station_name=station_name, alerts=alerts
    )
    return json.dumps(message.model_dump(mode="json"), ensure_ascii=False)


def deadletter_json(
    *,
    code: DeadLetterCode,
    reason: str,
    topic: str,
    received_ms: int,
    payload_bytes: int,
    payload_sha256: str,
    payload: str | None,
    payload_b64: str | None,
    truncated: bool,
) -> bytes:
    """A dead letter as UTF-8 JSON. The caller makes every text printable and bounds it.

    `payload` is the (possibly cut) payload when it is UTF-8, else `payload_b64`.
    """
    letter = {
        "code": str(code),
        "reason": reason,
        "topic": topic,
        "received_ms": received_ms,
        "payload_bytes": payload_bytes,
        "payload_sha256": payload_sha256,
        "payload": payload,
        "payload_b64": payload_b64,
        "truncated": truncated,
    }
    # Every string is printable or strictly decoded UTF-8, so this cannot fail;
    # backslashreplace is the belt to those braces.
    return json.dumps(letter, ensure_ascii=False).encode("utf-8", "backslashreplace")


# --- parsing: what Waystation reads -----------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def _describe(exc: ValidationError) -> str:
    """One line naming each failing field path, e.g. `data.temp_c: must be <= 150`."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
        parts.append(f"{loc or 'payload'}: {err['msg']}")
    return "; ".join(parts[:5]) + (f" (+{len(parts) - 5} more)" if len(parts) > 5 else "")


def _contract_error(exc: ValidationError) -> ContractError:
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return ContractError(DeadLetterCode.BAD_JSON, str(errors[0]["msg"]))
    return ContractError(DeadLetterCode.SCHEMA, _describe(exc))


def _is_union_tag(part: object) -> bool:
    # pydantic puts the discriminator value or the union arm in the location.
    return isinstance(part, str) and (part in set(Kind) or part.startswith("tagged-union["))


def parse_readings(payload: bytes | str) -> list[Reading]:
    """Parse a `telemetry` payload (one reading or an array of one device's readings)."""
    # Choose the shape by the first byte rather than validating against a union
    # of both: the error then names the field that is wrong, not the union arms.
    head = payload.lstrip()[:1]
    try:
        if head in (b"[", "["):
            readings = READING_ARRAY.validate_json(payload)
        else:
            readings = [ONE_READING.validate_json(payload)]
    except ValidationError as exc:
        raise _contract_error(exc) from exc
    kinds = {r.kind for r in readings}
    if len(kinds) > 1:
        raise ContractError(
            DeadLetterCode.SCHEMA, f"an array mixes kinds {sorted(kinds)}; one device, one kind"
        )
    return readings


def _parse_model(model: type[_M], payload: bytes | str) -> _M:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise _contract_error(exc) from exc


def parse_status(payload: bytes | str) -> Status:
    return _parse_model(Status, payload)


def parse_event(payload: bytes | str) -> Event:
    return _parse_model(Event, payload)


def validate_data(kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
    """Check a device's `data` object against its kind; return it as it will be sent.

    Raises ContractError(DeadLetterCode.SCHEMA, …) naming the field. The edge agent uses this
    before a reading enters its outbox, so a misconfigured register map is
    caught at the station rather than dead-lettered at ingest.
    """
    model = DATA_MODELS[kind]
    try:
        return model.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise ContractError(DeadLetterCode.SCHEMA, _describe(exc)) from exc


def data_fields(kind: Kind) -> dict[str, bool]:
    """The data field names of a kind, each with whether it is required."""
    return {name: f.is_required() for name, f in DATA_MODELS[kind].model_fields.items()}


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))
