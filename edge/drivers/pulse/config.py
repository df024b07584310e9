from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from edge.drivers.base import DriverSettings


class PulseConfig(DriverSettings):
    """`driver: {type: pulse, counters: {in_total: /sys/bus/counter/…/count0/count}}`.

    Each data field is read as an integer from its file (a Linux counter
    device, or a file a GPIO pulse daemon keeps up to date).
    """

    type: Literal["pulse"]
    counters: dict[str, Path] = Field(min_length=1)
