"""Simulated devices: a coherent station (see edge.simulation)."""

from __future__ import annotations

from edge.drivers.base import Driver, DriverSite
from edge.drivers.simulator.config import SimulatorConfig


def build(_config: SimulatorConfig, site: DriverSite) -> Driver:
    """A device of the station's one simulation (the agent builds it when a device is simulated)."""
    from edge.drivers.simulator.driver import SimulatorDriver  # noqa: PLC0415 - only when used

    if site.simulation is None:
        raise ValueError(f"device {site.device}: simulated, but the station has no simulation")
    return SimulatorDriver(site.device, site.simulation)
