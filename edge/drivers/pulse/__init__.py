"""Pulse/counter inputs: integer counters the kernel or a counter board exposes as files."""

from __future__ import annotations

from edge.drivers.base import Driver, DriverSite
from edge.drivers.pulse.config import PulseConfig


def build(config: PulseConfig, _site: DriverSite) -> Driver:
    from edge.drivers.pulse.driver import PulseDriver  # noqa: PLC0415 - only when used

    return PulseDriver(config)
