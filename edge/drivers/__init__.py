"""Device drivers, one folder per type, chosen by `driver.type` in the agent config.

Each folder holds `config.py` (a pydantic model, no I/O, no protocol library)
and `driver.py` (the reader). `build_driver` imports a driver module only when
a device uses it, so an agent with no Modbus device never loads pymodbus.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from edge.drivers.base import Driver, DriverError
from edge.drivers.dlt645.config import Dlt645Config
from edge.drivers.modbus.config import ModbusConfig
from edge.drivers.pulse.config import PulseConfig
from edge.drivers.simulator.config import SimulatorConfig
from waystation.contract import Kind

__all__ = ["DRIVER_KINDS", "Driver", "DriverConfig", "DriverError", "build_driver"]

DriverConfig = Annotated[
    SimulatorConfig | ModbusConfig | Dlt645Config | PulseConfig, Field(discriminator="type")
]

# Which device kinds each driver type can read.
DRIVER_KINDS: dict[str, frozenset[Kind]] = {
    "simulator": frozenset(Kind) - {Kind.GATEWAY},
    "modbus": frozenset({Kind.WATER_DISPENSER, Kind.CHARGING_LOCKER, Kind.METER}),
    "dlt645": frozenset({Kind.METER}),
    "pulse": frozenset({Kind.DOOR_COUNTER}),
}


def build_driver(config: ModbusConfig | Dlt645Config | PulseConfig) -> Driver:
    """A hardware driver for one device.

    Simulators are built by the agent, which owns the station's simulation.
    """
    if isinstance(config, ModbusConfig):
        from edge.drivers.modbus.driver import ModbusDriver  # noqa: PLC0415 - only when used

        return ModbusDriver(config)
    if isinstance(config, Dlt645Config):
        from edge.drivers.dlt645.driver import Dlt645Driver  # noqa: PLC0415 - only when used

        return Dlt645Driver(config)
    from edge.drivers.pulse.driver import PulseDriver  # noqa: PLC0415 - only when used

    return PulseDriver(config)
