from __future__ import annotations

from typing import Literal

from edge.drivers.base import DriverSettings


class SimulatorConfig(DriverSettings):
    """`driver: {type: simulator}`: the device is part of the station's simulation."""

    type: Literal["simulator"] = "simulator"
