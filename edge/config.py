"""The edge agent's configuration: which devices, which driver, intervals, outbox.

Validated completely at start-up, with no I/O: a driver that cannot read a
device's kind, a register map naming a field the contract does not have or
missing one it requires, a bad interval — each stops the agent with a message
naming the device and the field. `waystation edge --sample-config` prints
an example.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from edge.drivers import DRIVERS, DriverConfig
from edge.drivers.dlt645.config import Dlt645Config
from edge.drivers.simulator.config import SimulatorConfig
from waystation.configerror import ConfigError, Invalid, Text
from waystation.configfile import Document, document_from_data, load_document
from waystation.contract import ID_PATTERN, MAX_BATCH_READINGS, TARIFF_FIELDS, Kind, data_fields
from waystation.durations import DurationField
from waystation.registry import Registry, Role, Utility, check_timezone
from waystation.validation import validate

__all__ = [
    "AgentConfig",
    "AgentConfigError",
    "AgentDocument",
    "DeviceConfig",
    "OutboxConfig",
    "load_agent_config",
    "read_agent_config",
]

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
DEFAULT_OUTBOX = Path("/var/lib/waystation-edge/outbox.db")


class AgentConfigError(ConfigError):
    """The agent config is unreadable or invalid; the message names device and field."""


class OutboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Path = DEFAULT_OUTBOX
    # About 1.5 months of a 6-device station at one reading a minute: 400,000
    # rows are ~80 MB of SQLite.
    max_readings: int = Field(default=400_000, ge=1)
    max_age: DurationField = timedelta(days=45)
    # Readings of one device in one replayed array, and messages in flight.
    batch_readings: int = Field(default=100, ge=1, le=MAX_BATCH_READINGS)
    inflight_messages: int = Field(default=20, ge=1, le=1000)


class DeviceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Kind
    utility: Utility | None = None  # meters: what they measure (the simulator needs it)
    role: Role | None = None  # meters: main (the station's supply) or sub (the simulator needs it)
    # A simulated electricity meter that also reports 尖峰平谷 registers (as DL/T 645 meters do).
    tou_registers: bool = False
    interval: DurationField = timedelta(seconds=60)
    driver: DriverConfig = Field(default_factory=SimulatorConfig)

    @model_validator(mode="after")
    def _driver_fits_kind(self) -> Self:
        if self.kind is Kind.GATEWAY:
            raise Invalid(
                Text("the gateway is the agent itself: name it `agent_device`, not a device",
                     "网关就是代理程序本身：写在 `agent_device`，不要列为设备"),
            )  # fmt: skip
        meter_only = self.utility is not None or self.role is not None or self.tou_registers
        if meter_only and self.kind is not Kind.METER:
            raise Invalid(
                Text(f"`utility`, `role` and `tou_registers` apply to meters, not to a {self.kind}",
                     f"`utility`、`role` 和 `tou_registers` 只用于电表/水表，不用于 {self.kind}"),
            )  # fmt: skip
        driver = DRIVERS[self.driver.type]
        if self.kind not in driver.kinds:
            kinds = ", ".join(sorted(driver.kinds))
            raise Invalid(
                Text(f"a {self.driver.type} driver reads {kinds}, not {self.kind}",
                     f"{self.driver.type} 驱动只能读 {kinds}，不能读 {self.kind}"),
            )  # fmt: skip
        if driver.fields is not None:
            self._check_map(set(driver.fields(self.driver)))
        return self

    @property
    def measured_utility(self) -> Utility | None:
        """What a meter measures, as its config says it: `utility`, else what its driver reads.

        A DL/T 645 meter is an electricity meter; a register map says it by its field
        (`energy_kwh_total` or `water_m3_total`).
        """
        if self.kind is not Kind.METER:
            return None
        if self.utility is not None:
            return self.utility
        if isinstance(self.driver, Dlt645Config):
            return Utility.ELECTRICITY
        fields = DRIVERS[self.driver.type].fields
        mapped = set(fields(self.driver)) if fields is not None else set()
        if "water_m3_total" in mapped:
            return Utility.WATER
        if mapped & {"energy_kwh_total", "power_w", *TARIFF_FIELDS}:
            return Utility.ELECTRICITY
        return None

    def _check_map(self, mapped: set[str]) -> None:
        """A driver's map of data fields against the kind's contract."""
        fields = data_fields(self.kind)
        unknown = sorted(mapped - set(fields))
        missing = sorted(f for f, required in fields.items() if required and f not in mapped)
        if unknown:
            raise Invalid(
                Text(f"a {self.kind} has no field(s) {unknown}; it has {sorted(fields)}",
                     f"{self.kind} 没有字段 {unknown}；它的字段是 {sorted(fields)}"),
            )  # fmt: skip
        if missing and self.kind is not Kind.METER:
            raise Invalid(
                Text(f"the map lacks required field(s) {missing} of a {self.kind}",
                     f"映射缺少 {self.kind} 的必需字段 {missing}"),
            )  # fmt: skip


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    station: Id
    agent_device: Id  # the station's gateway device: the agent's own id on the broker
    gateway_interval: DurationField = timedelta(seconds=60)
    timezone: str = "Asia/Shanghai"  # for the simulators' daily rhythm
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    devices: dict[Id, DeviceConfig] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _agent_not_a_device(self) -> Self:
        if self.agent_device in self.devices:
            raise Invalid(
                problems=[
                    (
                        ("devices", self.agent_device),
                        Invalid(
                            Text(f"{self.agent_device!r} is the agent itself; list only the "
                                 "devices it reads", f"{self.agent_device!r} 是代理程序本身，"
                                 "设备列表里只写它读取的设备"),
                        ),
                    )
                ]
            )  # fmt: skip
        return self

    @classmethod
    def from_registry(
        cls, registry: Registry, station_id: str, *, outbox: Path, interval: timedelta | None = None
    ) -> AgentConfig:
        """Simulated devices for a station of the registry (the demo, and trying things out)."""
        station = registry.stations.get(station_id)
        if station is None:
            raise AgentConfigError(
                Text(f"station {station_id!r} is not in the registry",
                     f"站点 {station_id!r} 不在站点登记文件中")
            )  # fmt: skip
        gateways = [d for d, s in station.devices.items() if s.kind is Kind.GATEWAY]
        if len(gateways) != 1:
            raise AgentConfigError(
                Text(f"station {station_id!r} needs exactly one `kind: gateway` device for the "
                     f"agent (found {len(gateways)})", f"站点 {station_id!r} 需要恰好一个 "
                     f"`kind: gateway` 设备作为代理程序（现有 {len(gateways)} 个）")
            )  # fmt: skip
        return cls(
            station=station_id,
            agent_device=gateways[0],
            gateway_interval=interval or timedelta(seconds=60),
            timezone=station.timezone or registry.timezone,
            outbox=OutboxConfig(path=outbox),
            devices={
                d: DeviceConfig(
                    kind=s.kind,
                    utility=s.utility,
                    role=s.role,
                    tou_registers=s.tou_registers,
                    interval=interval or s.interval,
                )
                for d, s in station.devices.items()
                if s.kind is not Kind.GATEWAY
            },
        )


class AgentDocument(NamedTuple):
    config: AgentConfig
    document: Document


_MISSING = Text(
    "name the agent's config with --agent-config FILE (`waystation edge --sample-config` "
    "prints one)",
    "用 --agent-config 文件 指定代理配置（`waystation edge --sample-config` 可打印示例）",
)


def parse_agent_config(data: Any, source: str) -> AgentConfig:
    return validate(AgentConfig, document_from_data(data, source), error=AgentConfigError)


def read_agent_config(path: Path) -> AgentDocument:
    """The agent config and its document (for locating cross-checks' problems)."""
    try:
        document = load_document(path, missing=_MISSING)
    except ConfigError as exc:
        raise AgentConfigError(exc.problems) from None
    return AgentDocument(validate(AgentConfig, document, error=AgentConfigError), document)


def load_agent_config(path: Path) -> AgentConfig:
    return read_agent_config(path).config


SAMPLE = """\
# Waystation edge agent: one station's devices, read on their intervals.
version: 1
station: dachuan-rider-01
agent_device: r01-gw-01          # the station's gateway device in stations.yaml
gateway_interval: 60s
outbox:
  path: /var/lib/waystation-edge/outbox.db
  max_readings: 400000           # oldest dropped past this (counted, reported)
  max_age: 45d
  batch_readings: 100            # readings of one device per replayed message
devices:
  r01-meter-main:                # DL/T 645-2007 meter behind an RS-485/TCP converter
    kind: meter
    interval: 60s
    driver: {type: dlt645, host: 192.168.1.50, port: 8899, address: "000012345678"}
  r01-disp-01:                   # water dispenser with a Modbus TCP controller
    kind: water_dispenser
    interval: 60s
    driver:
      type: modbus
      host: 192.168.1.51
      unit: 1
      registers:
        water_l_total:    {address: 0, type: float32}
        energy_kwh_total: {address: 2, type: uint32, scale: 0.01}
        temp_c:           {address: 4, type: int16, scale: 0.1}
        heating:          {address: 5, type: bool}
  r01-door-01:                   # door counter on a counter input
    kind: door_counter
    interval: 60s
    driver:
      type: pulse
      counters:
        in_total: /sys/bus/counter/devices/counter0/count0/count
        out_total: /sys/bus/counter/devices/counter0/count1/count
  r01-locker-01:                 # no hardware yet: simulated
    kind: charging_locker
    driver: {type: simulator}
"""
