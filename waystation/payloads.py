"""What each message holds: the payload models of the wire contract (SPEC §4), strict and versioned.

Validation is strict: unknown fields, wrong types, NaN/inf and absurd
timestamps are rejected. `waystation.contract` builds and parses messages
with these models; nothing else should need them directly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    field_validator,
    model_validator,
)

__all__ = [
    "CONTRACT_VERSION",
    "DATA_MODELS",
    "MAX_BATCH_READINGS",
    "ONE_READING",
    "READING_ARRAY",
    "TARIFF_FIELDS",
    "TS_MAX_MS",
    "TS_MIN_MS",
    "AlertItem",
    "AlertsMessage",
    "Event",
    "EventType",
    "Kind",
    "Reading",
    "Status",
    "StatusState",
]

CONTRACT_VERSION: Final = 1

# Timestamps before this are a box that booted in 1970 or a unit mistake
# (seconds instead of milliseconds); after the upper bound, microseconds.
# Ingest applies its own, tighter, configurable window on top.
TS_MIN_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z

# A store-and-forward replay array never holds more than this many readings;
# the edge outbox sizes its batches below it.
MAX_BATCH_READINGS = 1000


class Kind(StrEnum):
    DOOR_COUNTER = "door_counter"
    WATER_DISPENSER = "water_dispenser"
    CHARGING_LOCKER = "charging_locker"
    METER = "meter"
    GATEWAY = "gateway"


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


TARIFF_FIELDS: tuple[str, str, str, str] = (
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

ONE_READING: TypeAdapter[Reading] = TypeAdapter(Reading)
READING_ARRAY: TypeAdapter[list[Reading]] = TypeAdapter(
    Annotated[list[Reading], Field(min_length=1, max_length=MAX_BATCH_READINGS)]
)


DATA_MODELS: dict[Kind, type[BaseModel]] = {
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


class EventType(StrEnum):
    """The event types Waystation itself writes or reads (devices may send others)."""

    UNREACHABLE = "unreachable"  # the agent cannot read the device
    REACHABLE = "reachable"  # it can again
    FAULT = "fault"
    FAULT_CLEARED = "fault_cleared"


class AlertItem(BaseModel):
    """One alert, as every channel that sends data carries it (MQTT `alerts/…`, the webhook)."""

    model_config = _STRICT
    key: str  # stable: rule, station and device
    rule: str
    device: str | None
    severity: str
    state: str  # firing or resolved
    since: int  # epoch ms the condition began
    resolved: int | None  # epoch ms it ended, while resolved
    detail: str
    text: str  # the alert's line, in the configured language


class AlertsMessage(BaseModel):
    """Retained on `alerts/{station}/{rule}` while the rule fires at the station."""

    model_config = _STRICT
    v: Literal[1]
    station: str
    station_name: str
    alerts: list[AlertItem]
