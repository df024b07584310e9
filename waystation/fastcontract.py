"""A fast mirror of the readings contract (msgspec), for the hot path of ingest and the rules.

"Fast accept, slow refuse": `fast_readings` accepts a telemetry payload only
when it is certainly valid under `waystation.payloads` (one device's kind,
epoch-millisecond `ts`, finite numbers, every range and cross-field rule);
anything else (an error of any kind, an RFC 3339 `ts`, a number msgspec
cannot hold) returns None, and the caller asks the pydantic contract, which
gives the canonical answer and wording. So this mirror may refuse more than
the contract, never accept more: `tests/test_fast_contract.py` checks that
differentially, on random and hostile payloads.

Needs msgspec (the `server` extra); the base package does not import it.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, cast

import msgspec
from msgspec import Meta, Struct

from waystation.payloads import MAX_BATCH_READINGS, TS_MAX_MS, TS_MIN_MS, Kind

__all__ = ["FIELD_TYPES", "FastReading", "data_dict", "fast_readings"]

_Ts = Annotated[int, Meta(ge=TS_MIN_MS, lt=TS_MAX_MS)]
_Count = Annotated[int, Meta(ge=0)]
_Register = Annotated[float, Meta(ge=0)]
_Printable = Annotated[str, Meta(min_length=1, max_length=64)]


def _finite(*values: float | None) -> None:
    for v in values:
        if v is not None and v - v != 0:  # NaN or ±inf (JSON's 1e999 parses to inf)
            raise ValueError("not finite")


def _printable(text: str | None) -> None:
    # Checked by hand: Python's `$` also matches before a trailing newline, where
    # pydantic's pattern `^[\x20-\x7e]+$` (Rust regex) does not.
    if text is not None and not all(0x20 <= ord(ch) <= 0x7E for ch in text):
        raise ValueError("not printable ASCII")


class DoorCounterData(Struct, forbid_unknown_fields=True):
    in_total: _Count
    out_total: _Count


class WaterDispenserData(Struct, forbid_unknown_fields=True):
    water_l_total: _Register
    energy_kwh_total: _Register
    temp_c: Annotated[float, Meta(ge=-50, le=150)]
    heating: bool
    fault: _Printable | None = None

    def __post_init__(self) -> None:
        _finite(self.water_l_total, self.energy_kwh_total, self.temp_c)
        _printable(self.fault)


class ChargingLockerData(Struct, forbid_unknown_fields=True):
    slots: Annotated[int, Meta(ge=1, le=1000)]
    slots_in_use: _Count
    energy_kwh_total: _Register
    fault_slots: _Count

    def __post_init__(self) -> None:
        _finite(self.energy_kwh_total)
        if self.slots_in_use > self.slots or self.fault_slots > self.slots:
            raise ValueError("more slots in use or faulty than slots")


class MeterData(Struct, forbid_unknown_fields=True):
    energy_kwh_total: _Register | None = None
    water_m3_total: _Register | None = None
    power_w: _Register | None = None
    energy_kwh_sharp_total: _Register | None = None
    energy_kwh_peak_total: _Register | None = None
    energy_kwh_flat_total: _Register | None = None
    energy_kwh_valley_total: _Register | None = None

    def __post_init__(self) -> None:
        _finite(
            self.energy_kwh_total,
            self.water_m3_total,
            self.power_w,
            self.energy_kwh_sharp_total,
            self.energy_kwh_peak_total,
            self.energy_kwh_flat_total,
            self.energy_kwh_valley_total,
        )
        if (self.energy_kwh_total is None) == (self.water_m3_total is None):
            raise ValueError("exactly one register")
        if self.water_m3_total is not None and not (
            self.power_w
            is self.energy_kwh_sharp_total
            is self.energy_kwh_peak_total
            is self.energy_kwh_flat_total
            is self.energy_kwh_valley_total
            is None
        ):
            raise ValueError("a water meter with electricity fields")


class GatewayData(Struct, forbid_unknown_fields=True):
    uptime_s: _Register
    outbox_depth: _Count
    outbox_dropped_total: _Count
    broker_refused_total: _Count | None = None
    broker_refused_reason: _Printable | None = None

    def __post_init__(self) -> None:
        _finite(self.uptime_s)
        _printable(self.broker_refused_reason)


_DATA: Final[dict[Kind, type[Struct]]] = {
    Kind.DOOR_COUNTER: DoorCounterData,
    Kind.WATER_DISPENSER: WaterDispenserData,
    Kind.CHARGING_LOCKER: ChargingLockerData,
    Kind.METER: MeterData,
    Kind.GATEWAY: GatewayData,
}


class FastReading(Struct):
    """What the hot path reads of a reading: `data` is the kind's Struct."""

    ts: int
    seq: int
    data: Any


def _reading_type(kind: Kind) -> type[FastReading]:
    made = msgspec.defstruct(
        f"{kind}_reading",
        [
            ("v", Literal[1]),
            ("ts", _Ts),
            ("seq", _Count),
            ("kind", Literal[str(kind)]),
            ("data", _DATA[kind]),
        ],
        bases=(FastReading,),
        forbid_unknown_fields=True,
    )
    return cast("type[FastReading]", made)


_READING = {kind: _reading_type(kind) for kind in Kind}
_ONE = {kind: msgspec.json.Decoder(t) for kind, t in _READING.items()}
_MANY = {
    kind: msgspec.json.Decoder(
        Annotated[list[t], Meta(min_length=1, max_length=MAX_BATCH_READINGS)]  # type: ignore[valid-type]
    )
    for kind, t in _READING.items()
}

# Each kind's data fields in the contract's order, with their line-protocol type
# ("f" float, "i" integer, "b" boolean, "s" string), as the pydantic models dump them.


def _field_type(info: msgspec.inspect.Type) -> str:
    if isinstance(info, msgspec.inspect.UnionType):  # X | None
        info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    for cls, code in (
        (msgspec.inspect.BoolType, "b"),
        (msgspec.inspect.IntType, "i"),
        (msgspec.inspect.FloatType, "f"),
        (msgspec.inspect.StrType, "s"),
    ):
        if isinstance(info, cls):
            return code
    raise TypeError(f"no line-protocol type for {info!r}")  # pragma: no cover


FIELD_TYPES: Final[dict[Kind, tuple[tuple[str, str], ...]]] = {
    kind: tuple(
        (f.name, _field_type(f.type))
        for f in msgspec.inspect.type_info(data).fields  # type: ignore[attr-defined]
    )
    for kind, data in _DATA.items()
}

_NOT_ACCEPTED = (msgspec.ValidationError, msgspec.DecodeError)


def fast_readings(kind: Kind, payload: bytes) -> list[FastReading] | None:
    """The payload's readings if they are certainly valid readings of `kind`, else None.

    None says nothing about why: ask `waystation.contract.parse_readings`.
    """
    try:
        if payload[:1] == b"[":
            readings: list[FastReading] = _MANY[kind].decode(payload)
            return readings
        one = _ONE[kind].decode(payload)
    except _NOT_ACCEPTED:
        return None
    return [one]


def data_dict(reading: FastReading) -> dict[str, Any]:
    """A reading's data as the contract's `model_dump()` gives it (absent fields as None)."""
    data: dict[str, Any] = msgspec.structs.asdict(reading.data)
    return data
