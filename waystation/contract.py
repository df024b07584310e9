"""The MQTT wire contract (SPEC §4) as strict, versioned pydantic models.

Everything that crosses the broker is described here, and both the edge agent
(which builds payloads) and ingest (which validates them) use these models, so
the two sides cannot drift apart. Validation is strict: unknown fields, wrong
types, NaN/inf and absurd timestamps are rejected with a reason naming the
offending field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "ALERTS_PREFIX",
    "CONTRACT_VERSION",
    "DEADLETTER_PREFIX",
    "ID_PATTERN",
    "MAX_BATCH_READINGS",
    "STATIONS",
    "STATIONS_FILTER",
    "TARIFF_FIELDS",
    "Channel",
    "ContractError",
    "DeadLetterCode",
    "Event",
    "Kind",
    "Reading",
    "Status",
    "Topic",
    "alerts_topic",
    "deadletter_topic",
    "device_topic",
    "everything_under",
    "parse_event",
    "parse_readings",
    "parse_status",
    "parse_topic",
    "station_filter",
]

CONTRACT_VERSION = 1
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)

# Timestamps before this are a box that booted in 1970 or a unit mistake
# (seconds instead of milliseconds); after the upper bound, microseconds.
# Ingest applies its own, tighter, configurable window on top.
TS_MIN_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

# A store-and-forward replay array never holds more than this many readings;
# the edge outbox sizes its batches below it.
MAX_BATCH_READINGS = 1000


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


class Kind(StrEnum):
    DOOR_COUNTER = "door_counter"
    WATER_DISPENSER = "water_dispenser"
    CHARGING_LOCKER = "charging_locker"
    METER = "meter"
    GATEWAY = "gateway"


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


# --- field types --------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


# JSON numbers: an integer where a float is expected is fine (1532 for 1532.0),
# a boolean is not. Strict mode already refuses strings and booleans.
Number = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[StrictInt, Field(ge=0)]
Register = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def _to_epoch_ms(value: Any) -> int:
    """Accept epoch milliseconds (int) or an RFC 3339 string with an offset."""
    if isinstance(value, bool):
        raise ValueError("ts must be epoch milliseconds or an RFC 3339 string, not a boolean")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"ts {value!r} is not an RFC 3339 timestamp") from exc
        if parsed.tzinfo is None:
            raise ValueError(f"ts {value!r} has no UTC offset")
        ms = round(parsed.timestamp() * 1000)
    else:
        raise ValueError("ts must be epoch milliseconds (integer) or an RFC 3339 string")
    if not TS_MIN_MS <= ms < TS_MAX_MS:
        raise ValueError(
            f"ts {ms} is outside 2020-01-01..2100-01-01 "
            "(clock not synchronised, or seconds/microseconds instead of milliseconds)"
        )
    return ms


class _Stamped(BaseModel):
    model_config = _STRICT

    v: Literal[1]
    ts: int

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: Any) -> int:
        return _to_epoch_ms(value)

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.ts / 1000, tz=UTC)


# --- reading data per kind ------------------------------------------------------


class DoorCounterData(BaseModel):
    model_config = _STRICT
    in_total: Count
    out_total: Count


class WaterDispenserData(BaseModel):
    model_config = _STRICT
    water_l_total: Register
    energy_kwh_total: Register
    temp_c: Annotated[float, Field(ge=-50, le=150, allow_inf_nan=False)]
    heating: StrictBool
    fault: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")] | None = (
        None
    )


class ChargingLockerData(BaseModel):
    model_config = _STRICT
    slots: Annotated[StrictInt, Field(ge=1, le=1000)]
    slots_in_use: Count
    energy_kwh_total: Register
    fault_slots: Count

    @model_validator(mode="after")
    def _within_slots(self) -> ChargingLockerData:
        if self.slots_in_use > self.slots:
            raise ValueError(f"slots_in_use {self.slots_in_use} exceeds slots {self.slots}")
        if self.fault_slots > self.slots:
            raise ValueError(f"fault_slots {self.fault_slots} exceeds slots {self.slots}")
        return self


TARIFF_FIELDS = (
    "energy_kwh_sharp_total",  # 尖
    "energy_kwh_peak_total",  # 峰
    "energy_kwh_flat_total",  # 平
    "energy_kwh_valley_total",  # 谷
)


class MeterData(BaseModel):
    """An electricity or a water meter.

    Electricity meters with time-of-use registers (DL/T 645 rates 1-4) may add
    the per-tariff totals; they are optional, so every earlier v1 payload stays
    valid.
    """

    model_config = _STRICT
    energy_kwh_total: Register | None = None
    water_m3_total: Register | None = None
    power_w: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    energy_kwh_sharp_total: Register | None = None
    energy_kwh_peak_total: Register | None = None
    energy_kwh_flat_total: Register | None = None
    energy_kwh_valley_total: Register | None = None

    @model_validator(mode="after")
    def _one_register(self) -> MeterData:
        if (self.energy_kwh_total is None) == (self.water_m3_total is None):
            raise ValueError("a meter reports exactly one of energy_kwh_total or water_m3_total")
        if self.water_m3_total is not None and (
            self.power_w is not None or any(getattr(self, f) is not None for f in TARIFF_FIELDS)
        ):
            raise ValueError("power_w and tariff registers belong to electricity meters")
        return self


class GatewayData(BaseModel):
    """The agent itself.

    `broker_refused_total` (readings the broker refused since the agent
    started: a PUBACK reason code >= 0x80; they stay in the outbox) and
    `broker_refused_reason` (the latest refusal's reason, while it lasts) are
    optional and sent only once the broker has refused something, so every
    earlier v1 payload stays valid.
    """

    model_config = _STRICT
    uptime_s: Register
    outbox_depth: Count
    outbox_dropped_total: Count
    broker_refused_total: Count | None = None
    broker_refused_reason: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")] | None
    ) = None


class _ReadingBase(_Stamped):
    seq: Count


class DoorCounterReading(_ReadingBase):
    kind: Literal[Kind.DOOR_COUNTER]
    data: DoorCounterData


class WaterDispenserReading(_ReadingBase):
    kind: Literal[Kind.WATER_DISPENSER]
    data: WaterDispenserData


class ChargingLockerReading(_ReadingBase):
    kind: Literal[Kind.CHARGING_LOCKER]
    data: ChargingLockerData


class MeterReading(_ReadingBase):
    kind: Literal[Kind.METER]
    data: MeterData


class GatewayReading(_ReadingBase):
    kind: Literal[Kind.GATEWAY]
    data: GatewayData


Reading = Annotated[
    DoorCounterReading
    | WaterDispenserReading
    | ChargingLockerReading
    | MeterReading
    | GatewayReading,
    Field(discriminator="kind"),
]

_ONE_READING: TypeAdapter[Reading] = TypeAdapter(Reading)
_READING_ARRAY: TypeAdapter[list[Reading]] = TypeAdapter(
    Annotated[list[Reading], Field(min_length=1, max_length=MAX_BATCH_READINGS)]
)


_DATA_MODELS: dict[Kind, type[BaseModel]] = {
    Kind.DOOR_COUNTER: DoorCounterData,
    Kind.WATER_DISPENSER: WaterDispenserData,
    Kind.CHARGING_LOCKER: ChargingLockerData,
    Kind.METER: MeterData,
    Kind.GATEWAY: GatewayData,
}


class StatusState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Status(_Stamped):
    """Retained on `stations/{station}/{device}/status`; the agent's will sends `offline`."""

    state: StatusState
    agent: Annotated[str, Field(min_length=1, max_length=128)]


class Event(_Stamped):
    seq: Count
    type: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    detail: dict[str, Any] = Field(default_factory=dict)


# --- parsing entry points --------------------------------------------------------

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
            readings = _READING_ARRAY.validate_json(payload)
        else:
            readings = [_ONE_READING.validate_json(payload)]
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


# --- topics ---------------------------------------------------------------------

STATIONS = "stations"
# Every station's telemetry, statuses and events: what ingest and the rules subscribe to.
STATIONS_FILTER = f"{STATIONS}/+/+/+"
DEADLETTER_PREFIX = "waystation/deadletter"
ALERTS_PREFIX = "alerts"  # the MQTT alert channel's default prefix


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


def validate_data(kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
    """Check a device's `data` object against its kind; return it as it will be sent.

    Raises ContractError(DeadLetterCode.SCHEMA, …) naming the field. The edge agent uses this
    before a reading enters its outbox, so a misconfigured register map is
    caught at the station rather than dead-lettered at ingest.
    """
    model = _DATA_MODELS[kind]
    try:
        return model.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise ContractError(DeadLetterCode.SCHEMA, _describe(exc)) from exc


def data_fields(kind: Kind) -> dict[str, bool]:
    """The data field names of a kind, each with whether it is required."""
    return {name: f.is_required() for name, f in _DATA_MODELS[kind].model_fields.items()}


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))
