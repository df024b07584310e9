from __future__ import annotations

from datetime import datetime
from typing import Any

from edge.drivers.base import DriverError
from edge.drivers.pulse.config import PulseConfig


class PulseDriver:
    def __init__(self, config: PulseConfig) -> None:
        self.config = config

    def read(self, now: datetime) -> dict[str, Any]:  # noqa: ARG002 - counters have no clock
        data: dict[str, Any] = {}
        for field, path in self.config.counters.items():
            try:
                data[field] = int(path.read_text().strip())
            except (OSError, ValueError) as exc:
                raise DriverError(f"counter {field} at {path}: {exc}") from exc
        return data

    def close(self) -> None:
        return None
