"""The station registry (`stations.yaml`, SPEC §11): what operators edit.

Loaded once at start-up and validated completely, so a typo stops a service
with a message naming the file, the station, the device and the field, rather
than surfacing hours later as dead letters. Nothing here does I/O while
validating; `load_registry` reads the file, the models only check it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from waystation.contract import ID_PATTERN, Kind
from waystation.parties import (
    ROLES,
    PartySpec,
    PartyType,
    PolicySpec,
    Shares,
    default_policy,
)
from waystation.validation import describe_errors

__all__ = [
    "DeviceSpec",
    "DurationField",
    "OperatingModel",
    "Registry",
    "RegistryError",
    "Role",
    "StationSpec",
    "Utility",
    "load_registry",
    "parse_duration",
    "parse_opening_hours",
]

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

DEFAULT_INTERVAL = timedelta(seconds=60)


class RegistryError(ValueError):
    """The registry file is unreadable or invalid; the message names file, station and field."""


class OperatingModel(StrEnum):
    ENTERPRISE_INCUBATED = "enterprise_incubated"
    DEPARTMENT_GUIDED = "department_guided"
    INDUSTRY_MANAGED = "industry_managed"
    COMMUNITY_INTEGRATED = "community_integrated"


class Utility(StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"


class Role(StrEnum):
    MAIN = "main"
    SUB = "sub"


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """`90s`, `5m`, `1.5h`, `2d`, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 60s, 5m, 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration like 60s, 5m, 1h or 2d")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return timedelta(seconds=seconds)


# A duration field: `90s`, `5m`, `1h`, `2d` or seconds in config files.
DurationField = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSpec(_Strict):
    kind: Kind
    utility: Utility | None = None
    role: Role | None = None
    interval: DurationField = DEFAULT_INTERVAL
    # The fastest a cumulative register can plausibly grow, per hour (kWh, m³, l
    # or visits); a faster jump is a spike or a meter swap. Defaults by kind.
    max_rate: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    # Silent for longer than this is an outage; default a few reporting intervals.
    timeout: DurationField | None = None
    # An electricity meter that keeps its own time-of-use registers (DL/T 645 尖峰平谷):
    # the monthly split by period then comes from them, as on the utility's bill.
    tou_registers: bool = False

    @model_validator(mode="after")
    def _meter_fields(self) -> DeviceSpec:
        if self.kind is Kind.METER:
            if self.utility is None:
                raise ValueError("a meter needs `utility: electricity` or `utility: water`")
            if self.role is None:
                object.__setattr__(self, "role", Role.MAIN)
        elif self.utility is not None or self.role is not None:
            raise ValueError(f"`utility` and `role` apply to meters, not to a {self.kind}")
        if self.tou_registers and self.utility is not Utility.ELECTRICITY:
            raise ValueError("`tou_registers` apply to electricity meters")
        return self


class Location(_Strict):
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_opening_hours(value: str) -> tuple[int, int]:
    """`07:00-22:00` → minutes of the day (420, 1320); `22:00-06:00` wraps midnight."""
    m = _HOURS_RE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not opening hours like 07:00-22:00")
    start = int(m.group(1)) * 60 + int(m.group(2))
    end = int(m.group(3)) * 60 + int(m.group(4))
    if not (0 <= start < 1440 and 0 < end <= 1440) or start == end:
        raise ValueError(f"{value!r} is not opening hours like 07:00-22:00")
    return start, end


class StationSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    model: OperatingModel
    timezone: str | None = None
    # Local opening hours like 07:00-22:00; none means open around the clock.
    opening_hours: str | None = None
    location: Location | None = None
    devices: dict[Id, DeviceSpec] = Field(min_length=1)
    # Utility allocation (SPEC §8): the parties in the station's two roles, its
    # tariff and, when the operating model's default does not fit, its policy.
    union: Id | None = None
    operator: Id | None = None
    tariff: str | None = None
    policy: PolicySpec | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_opening_hours(value)
        return value

    def open_since(self, local: datetime) -> datetime | None:
        """When the current opening began (local time), or None while closed."""
        if self.opening_hours is None:
            return local - timedelta(days=1)  # always open: open for at least a day
        start, end = parse_opening_hours(self.opening_hours)
        minute = local.hour * 60 + local.minute
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if start < end:
            return midnight + timedelta(minutes=start) if start <= minute < end else None
        if minute >= start:
            return midnight + timedelta(minutes=start)
        if minute < end:
            return midnight - timedelta(days=1) + timedelta(minutes=start)
        return None


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)"
        ) from exc
    return value


class Registry(_Strict):
    version: int
    timezone: str = "Asia/Shanghai"
    stations: dict[Id, StationSpec] = Field(min_length=1)
    parties: dict[Id, PartySpec] = Field(default_factory=dict)
    # Overrides of the built-in default policy per operating model.
    policies: dict[OperatingModel, PolicySpec] = Field(default_factory=dict)
    tariff: str | None = None
    _device_index: dict[str, tuple[str, DeviceSpec]] = PrivateAttr(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"registry version {value} is not supported (this release reads 1)")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _unique_devices(self) -> Registry:
        seen: dict[str, str] = {}
        for station_id, station in self.stations.items():
            for device_id in station.devices:
                if device_id in seen:
                    raise ValueError(
                        f"device id {device_id!r} is used by stations {seen[device_id]!r} "
                        f"and {station_id!r}; a device id is unique across the registry"
                    )
                seen[device_id] = station_id
        return self

    @model_validator(mode="after")
    def _allocation_references(self) -> Registry:
        if not self.parties:
            return self  # allocation not configured; telemetry needs none of it
        for station_id, station in self.stations.items():
            try:
                _check_station_policy(self, station)
            except ValueError as exc:
                raise ValueError(f"station {station_id!r}: {exc}") from None
        return self

    def model_post_init(self, _context: Any, /) -> None:
        self._device_index = {
            device_id: (station_id, spec)
            for station_id, station in self.stations.items()
            for device_id, spec in station.devices.items()
        }

    def device(self, device_id: str) -> tuple[str, DeviceSpec] | None:
        """The station a device belongs to and its spec, or None if unknown."""
        return self._device_index.get(device_id)

    def station_timezone(self, station_id: str) -> ZoneInfo:
        return ZoneInfo(self.stations[station_id].timezone or self.timezone)

    def policy(self, station_id: str) -> PolicySpec:
        """The station's own policy, else the registry's for its model, else the built-in one."""
        station = self.stations[station_id]
        return station.policy or self.policies.get(station.model) or default_policy(station.model)

    def party(self, station_id: str, name: str) -> str:
        """The party id a policy's `union`, `operator` or party id means at this station."""
        station = self.stations[station_id]
        if name == "union":
            party = station.union or self._only_union()
        elif name == "operator":
            party = station.operator
        else:
            party = name
        if party is None or party not in self.parties:
            raise ValueError(f"station {station_id!r} has no party for {name!r}")
        return party

    def _only_union(self) -> str | None:
        unions = [p for p, spec in self.parties.items() if spec.type is PartyType.UNION]
        return unions[0] if len(unions) == 1 else None

    @property
    def device_count(self) -> int:
        return sum(len(s.devices) for s in self.stations.values())


def _check_roles(registry: Registry, station: StationSpec) -> None:
    for role, party in (("union", station.union), ("operator", station.operator)):
        if party is not None and party not in registry.parties:
            raise ValueError(f"{role} {party!r} is not among the registry's parties")
    if station.union is None and registry._only_union() is None:  # noqa: SLF001
        raise ValueError("name its `union` (the registry has not exactly one union party)")


def _check_station_policy(registry: Registry, station: StationSpec) -> None:
    _check_roles(registry, station)
    policy = station.policy or registry.policies.get(station.model) or default_policy(station.model)

    def check_names(shares: Shares, what: str) -> None:
        for name in [shares] if isinstance(shares, str) else shares:
            if name == "operator" and station.operator is None:
                raise ValueError(f"{what} names `operator`, but the station has none")
            if name not in ROLES and name not in registry.parties:
                raise ValueError(f"{what} names {name!r}, which is neither a role nor a party")

    check_names(policy.loads, "policy loads")
    for device_id, shares in policy.devices.items():
        spec = station.devices.get(device_id)
        if spec is None or spec.kind in (Kind.DOOR_COUNTER, Kind.GATEWAY):
            raise ValueError(f"policy devices: {device_id!r} is not a measured load here")
        check_names(shares, f"policy devices.{device_id}")
    counters = policy.residual.counters()
    for counter in counters.values():
        spec = station.devices.get(counter)
        if spec is None or spec.kind is not Kind.DOOR_COUNTER:
            raise ValueError(f"residual shares: {counter!r} is not a door counter of this station")
    check_names(dict.fromkeys(counters, Decimal(1)) or policy.residual.weights(), "residual shares")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a registry must not lose a station that way."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            line = key_node.start_mark.line + 1
            raise RegistryError(f"line {line}: key {key!r} appears twice")
        mapping[key] = loader.construct_object(value_node)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _where(loc: tuple[int | str, ...]) -> str:
    """Turn pydantic's location into `station 'x', device 'y': field`."""
    parts = list(loc)
    words: list[str] = []
    if len(parts) >= 2 and parts[0] == "stations":
        words.append(f"station {parts[1]!r}")
        parts = parts[2:]
        if len(parts) >= 2 and parts[0] == "devices":
            words.append(f"device {parts[1]!r}")
            parts = parts[2:]
    field = ".".join(str(p) for p in parts)
    return ", ".join(words) + (f": {field}" if field else "") if words else field or "registry"


def parse_registry(data: Any, source: str = "<registry>") -> Registry:
    if not isinstance(data, dict):
        raise RegistryError(f"{source}: the registry must be a mapping with version and stations")
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(describe_errors(source, exc, _where)) from exc


def load_registry(path: str | Path) -> Registry:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RegistryError(
            f"{path}: no such file (set --registry or WAYSTATION_REGISTRY)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RegistryError as exc:
        raise RegistryError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
    return parse_registry(data, str(path))
