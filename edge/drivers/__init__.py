"""Device drivers: one folder per type, each listed once in DRIVERS.

Each folder holds `config.py` (a pydantic model, no I/O, no protocol
library), `driver.py` (the reader) and, in its `__init__`, `build` (the
factory, which imports `driver.py` only when a device uses it). DRIVERS says,
per `driver.type`, which model configures it, which device kinds it reads and
how it is built; the agent config's `driver:` union, its checks and the agent
(simulated devices included) all go through it. A new driver is a folder and
a row here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from edge.drivers import dlt645, modbus, pulse, simulator
from edge.drivers.base import Driver, DriverError, DriverSettings, DriverSite, DriverType
from edge.drivers.dlt645.config import Dlt645Config
from edge.drivers.modbus.config import ModbusConfig
from edge.drivers.pulse.config import PulseConfig
from edge.drivers.simulator.config import SimulatorConfig
from waystation.contract import Kind

__all__ = [
    "DRIVERS",
    "Driver",
    "DriverConfig",
    "DriverError",
    "DriverSite",
    "DriverType",
    "build_driver",
]

_TYPES: tuple[DriverType[Any], ...] = (
    DriverType(SimulatorConfig, frozenset(Kind) - {Kind.GATEWAY}, simulator.build),
    DriverType(
        ModbusConfig,
        frozenset({Kind.WATER_DISPENSER, Kind.CHARGING_LOCKER, Kind.METER}),
        modbus.build,
        fields=lambda c: c.registers,
    ),
    DriverType(Dlt645Config, frozenset({Kind.METER}), dlt645.build),
    DriverType(
        PulseConfig, frozenset({Kind.DOOR_COUNTER}), pulse.build, fields=lambda c: c.counters
    ),
)
DRIVERS: dict[str, DriverType[Any]] = {t.name: t for t in _TYPES}

if TYPE_CHECKING:
    DriverConfig = DriverSettings
else:
    # `driver:` in a device's config: the model whose `type` matches.
    DriverConfig = Annotated[Union[tuple(t.config for t in _TYPES)], Field(discriminator="type")]  # noqa: UP007


def build_driver(config: DriverSettings, site: DriverSite) -> Driver:
    """The driver of one device, built by its type's factory."""
    return DRIVERS[config.type].factory(config, site)
