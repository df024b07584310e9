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
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from edge.drivers import DRIVER_KINDS, DriverConfig
from edge.drivers.modbus.config import ModbusConfig
from edge.drivers.pulse.config import PulseConfig
from edge.drivers.simulator.config import SimulatorConfig
from waystation.contract import ID_PATTERN, MAX_BATCH_READINGS, Kind, data_fields
from waystation.registry import DurationField, Registry, Utility
from waystation.validation import describe_errors

__all__ = ["AgentConfig", "AgentConfigError", "DeviceConfig", "OutboxConfig", "load_agent_config"]

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
DEFAULT_OUTBOX = Path("/var/lib/waystation-edge/outbox.db")


class AgentConfigError(ValueError):
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
    interval: DurationField = timedelta(seconds=60)
    driver: DriverConfig = Field(default_factory=SimulatorConfig)

    @model_validator(mode="after")
    def _driver_fits_kind(self) -> Self:
        if self.utility is not None and self.kind is not Kind.METER:
            raise ValueError(f"`utility` applies to meters, not to a {self.kind}")
        if self.kind is Kind.GATEWAY:
            raise ValueError(
                "the gateway is the agent itself: name it `agent_device`, not a device"
            )
        if self.kind not in DRIVER_KINDS[self.driver.type]:
            kinds = ", ".join(sorted(DRIVER_KINDS[self.driver.type]))
            raise ValueError(f"a {self.driver.type} driver reads {kinds}, not {self.kind}")
        if isinstance(self.driver, ModbusConfig | PulseConfig):
            mapped = set(
                self.driver.registers
                if isinstance(self.driver, ModbusConfig)
                else self.driver.counters
            )
            fields = data_fields(self.kind)
            unknown = sorted(mapped - set(fields))
            missing = sorted(f for f, required in fields.items() if required and f not in mapped)
            if unknown:
                raise ValueError(
                    f"a {self.kind} has no field(s) {unknown}; it has {sorted(fields)}"
                )
            if missing and self.kind is not Kind.METER:
                raise ValueError(f"the map lacks required field(s) {missing} of a {self.kind}")
        return self


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    station: Id
    agent_device: Id  # the station's gateway device: the agent's own id on the broker
    gateway_interval: DurationField = timedelta(seconds=60)
    timezone: str = "Asia/Shanghai"  # for the simulators' daily rhythm
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    devices: dict[Id, DeviceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _agent_not_a_device(self) -> Self:
        if self.agent_device in self.devices:
            raise ValueError(
                f"{self.agent_device!r} is the agent itself; list only the devices it reads"
            )
        return self

    @classmethod
    def from_registry(
        cls, registry: Registry, station_id: str, *, outbox: Path, interval: timedelta | None = None
    ) -> AgentConfig:
        """Simulated devices for a station of the registry (the demo, and trying things out)."""
        station = registry.stations.get(station_id)
        if station is None:
            raise AgentConfigError(f"station {station_id!r} is not in the registry")
        gateways = [d for d, s in station.devices.items() if s.kind is Kind.GATEWAY]
        if len(gateways) != 1:
            raise AgentConfigError(
                f"station {station_id!r} needs exactly one `kind: gateway` device for the agent "
                f"(found {len(gateways)})"
            )
        return cls(
            station=station_id,
            agent_device=gateways[0],
            gateway_interval=interval or timedelta(seconds=60),
            timezone=station.timezone or registry.timezone,
            outbox=OutboxConfig(path=outbox),
            devices={
                d: DeviceConfig(kind=s.kind, utility=s.utility, interval=interval or s.interval)
                for d, s in station.devices.items()
                if s.kind is not Kind.GATEWAY
            },
        )


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "devices":
        # drop pydantic's union tag (the driver type) from the location
        rest = [p for p in parts[2:] if p not in DRIVER_KINDS]
        return f"device {parts[1]!r}" + (f": {'.'.join(rest)}" if rest else "")
    return ".".join(parts) or "config"


def parse_agent_config(data: Any, source: str) -> AgentConfig:
    if not isinstance(data, dict):
        raise AgentConfigError(
            f"{source}: expected a mapping with station, agent_device and devices"
        )
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise AgentConfigError(describe_errors(source, exc, _where)) from exc


def load_agent_config(path: Path) -> AgentConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise AgentConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_agent_config(data, str(path))


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
