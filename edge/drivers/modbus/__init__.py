"""Modbus TCP/RTU devices (pymodbus) with the register map in config."""

from __future__ import annotations

from edge.drivers.base import Driver, DriverSite
from edge.drivers.modbus.config import ModbusConfig


def build(config: ModbusConfig, _site: DriverSite) -> Driver:
    from edge.drivers.modbus.driver import ModbusDriver  # noqa: PLC0415 - pymodbus only when used

    return ModbusDriver(config)
