from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class SimulatorConfig(BaseModel):
    """`driver: {type: simulator}`: the device is part of the station's simulation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["simulator"] = "simulator"
