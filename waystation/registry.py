"""The station registry (`stations.yaml`, SPEC §11): what operators edit.

Loaded once at start-up and validated completely, so a typo stops a service
with a message naming the file, the station, the device and the field, rather
than surfacing hours later as dead letters. Nothing here does I/O while
validating; `load_registry` reads the file, the models only check it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from waystation.configerror import ConfigError, Invalid, Text
from waystation.configfile import Document, document_from_data, load_document
from waystation.contract import ID_PATTERN, Kind
from waystation.coords import CRS, convert
from waystation.durations import DurationField, format_duration
from waystation.language import Language
from waystation.parties import (
    PartySpec,
    PartyType,
    PolicySpec,
    default_policy,
)
from waystation.policychecks import Located, station_problems
from waystation.validation import validate

__all__ = [
    "DeviceSpec",
    "OperatingModel",
    "Registry",
    "RegistryDocument",
    "RegistryError",
    "Role",
    "StationSpec",
    "Utility",
    "check_timezone",
    "load_registry",
    "parse_opening_hours",
    "parse_registry",
    "read_registry",
]

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

DEFAULT_INTERVAL = timedelta(seconds=60)


class RegistryError(ConfigError):
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


_UTILITY_ZH = {Utility.ELECTRICITY: "电", Utility.WATER: "水"}


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
                raise Invalid(
                    Text(
                        "a meter needs `utility: electricity` or `utility: water`",
                        "电表/水表需要写明 `utility: electricity` 或 `utility: water`",
                    ),
                    code="missing",
                )
            if self.role is None:
                object.__setattr__(self, "role", Role.MAIN)
        elif self.utility is not None or self.role is not None:
            raise Invalid(
                Text(
                    f"`utility` and `role` apply to meters, not to a {self.kind}",
                    f"`utility` 和 `role` 只用于电表/水表，不用于 {self.kind}",
                ),
                Text("remove them from this device", "从这个设备上删掉它们"),
            )
        if self.tou_registers and self.utility is not Utility.ELECTRICITY:
            raise Invalid(
                Text("`tou_registers` apply to electricity meters", "`tou_registers` 只用于电表"),
            )
        if self.timeout is not None and self.timeout < self.interval:
            timeout, interval = format_duration(self.timeout), format_duration(self.interval)
            too_short = Invalid(
                Text(
                    f"timeout {timeout} is shorter than the reporting interval {interval}: "
                    "the device would always count as silent",
                    f"超时 {timeout} 比上报间隔 {interval} 还短：设备会一直被当作失联",
                ),
                Text(
                    "make `timeout` a few intervals long (the default is three)",
                    "把 `timeout` 设为上报间隔的几倍（默认三倍）",
                ),
                code="timeout_below_interval",
            )
            raise Invalid(problems=[(("timeout",), too_short)])
        return self


def _two_mains(utility: Utility, ids: list[str], device_id: str) -> Invalid:
    listed = ", ".join(ids)
    return Invalid(
        Text(
            f"{len(ids)} main {utility} meters ({listed}) would be added together: "
            f"{device_id!r} has no `role`, and a meter's role defaults to main",
            f"{len(ids)} 块{_UTILITY_ZH[utility]}总表（{listed}）会被相加："
            f"{device_id!r} 没写 `role`，电表/水表的 role 默认是总表 main",
        ),
        Text(
            f"if {device_id!r} is a sub-meter, write `role: sub`; if the station really has "
            "two supplies, write `role: main` on each",
            f"如果 {device_id!r} 是分表，写上 `role: sub`；如果站点确有两路供电/供水，"
            "在每块总表上都写 `role: main`",
        ),
        code="two_main_meters",
    )


class Location(_Strict):
    """Where a station is, in the coordinate system it was read in (waystation.coords).

    `wgs84` for GPS and OpenStreetMap, `gcj02` for a point picked on Gaode
    (AutoNavi) or Tencent maps, `bd09` for Baidu's.
    """

    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    crs: CRS = "wgs84"

    def to(self, target: CRS) -> tuple[float, float]:
        """(lat, lon) in `target`, as a map of those tiles needs them."""
        return convert(self.lat, self.lon, self.crs, target)


_HOURS_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_opening_hours(value: str) -> tuple[int, int]:
    """`07:00-22:00` → minutes of the day (420, 1320); `22:00-06:00` wraps midnight."""
    m = _HOURS_RE.match(value)
    start = int(m.group(1)) * 60 + int(m.group(2)) if m else -1
    end = int(m.group(3)) * 60 + int(m.group(4)) if m else -1
    minutes_ok = m is not None and int(m.group(2)) < 60 and int(m.group(4)) < 60  # not 07:60
    if not (minutes_ok and 0 <= start < 1440 and 0 < end <= 1440) or start == end:
        raise Invalid(
            Text(
                f"{value!r} is not opening hours like 07:00-22:00",
                f"{value!r} 不是营业时间，应写成 07:00-22:00 这样",
            ),
            Text(
                "local times, start-end; 22:00-06:00 runs past midnight; leave it out for "
                "always open",
                "写当地时间“开始-结束”；22:00-06:00 表示跨过午夜；全天开放就不写",
            ),
        )
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
        return None if value is None else check_timezone(value)

    @field_validator("opening_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None:
            parse_opening_hours(value)
        return value

    @model_validator(mode="after")
    def _one_main_per_utility(self) -> StationSpec:
        """Two main meters of a utility are added together: refuse it unless both say so.

        A sub-meter written without `role: sub` would otherwise be billed on top of the
        real main meter. A station with two supplies writes `role: main` on each.
        """
        mains: dict[Utility, list[str]] = {}
        for device_id, device in self.devices.items():
            if device.kind is Kind.METER and device.role is Role.MAIN and device.utility:
                mains.setdefault(device.utility, []).append(device_id)
        problems: list[tuple[tuple[str | int, ...], Invalid]] = []
        for utility, ids in mains.items():
            defaulted = [d for d in ids if "role" not in self.devices[d].model_fields_set]
            if len(ids) < 2 or not defaulted:
                continue
            problems += [(("devices", d), _two_mains(utility, ids, d)) for d in defaulted]
        if problems:
            raise Invalid(problems=problems)
        return self

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


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            Text(f"unknown time zone {value!r}", f"未知的时区 {value!r}"),
            Text("use an IANA name like Asia/Shanghai", "请用 IANA 时区名，如 Asia/Shanghai"),
            code="bad_timezone",
        ) from None
    return value


class Registry(_Strict):
    version: int
    timezone: str = "Asia/Shanghai"
    # What people read: notices, findings, report summaries, the exports' labels.
    language: Language = "zh"
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
            raise Invalid(
                Text(
                    f"registry version {value} is not supported (this release reads 1)",
                    f"不支持第 {value} 版的站点登记文件（本版本只读第 1 版）",
                ),
                Text("write `version: 1`", "写 `version: 1`"),
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _unique_devices(self) -> Registry:
        seen: dict[str, str] = {}
        problems: list[tuple[tuple[str | int, ...], Invalid]] = []
        for station_id, station in self.stations.items():
            for device_id in station.devices:
                if device_id in seen:
                    problems.append(
                        (
                            ("stations", station_id, "devices", device_id),
                            Invalid(
                                Text(
                                    f"device id {device_id!r} is also used by station "
                                    f"{seen[device_id]!r}",
                                    f"设备编号 {device_id!r} 已被站点 {seen[device_id]!r} 使用",
                                ),
                                Text(
                                    "a device id is unique across the registry: rename one",
                                    "设备编号在整个登记文件中必须唯一：请改掉其中一个",
                                ),
                                code="duplicate_device",
                            ),
                        )
                    )
                else:
                    seen[device_id] = station_id
        if problems:
            raise Invalid(problems=problems)
        return self

    @model_validator(mode="after")
    def _allocation_references(self) -> Registry:
        if not self.parties:
            return self  # allocation not configured; telemetry needs none of it
        problems: list[Located] = []
        for station_id, station in self.stations.items():
            problems += [
                (("stations", station_id, *path), invalid)
                for path, invalid in station_problems(self, station)
            ]
        if problems:
            raise Invalid(problems=problems)
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


class RegistryDocument(NamedTuple):
    registry: Registry
    document: Document


_MISSING = Text(
    "name the registry with --registry FILE or WAYSTATION_REGISTRY (default ./stations.yaml)",
    "用 --registry 文件 或环境变量 WAYSTATION_REGISTRY 指定站点登记文件（默认 ./stations.yaml）",
)


def parse_registry(data: Any, source: str = "<registry>") -> Registry:
    return validate(Registry, document_from_data(data, source), error=RegistryError)


def read_registry(path: str | Path) -> RegistryDocument:
    """The registry and its document (for locating cross-checks' problems)."""
    try:
        document = load_document(path, missing=_MISSING)
    except ConfigError as exc:
        raise RegistryError(exc.problems) from None
    return RegistryDocument(validate(Registry, document, error=RegistryError), document)


def load_registry(path: str | Path) -> Registry:
    return read_registry(path).registry
