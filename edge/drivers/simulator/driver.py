from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from edge.simulation import StationSimulation


class SharedSimulation:
    """One simulation per station, advanced by whichever device's poller reads first."""

    def __init__(self, sim: StationSimulation) -> None:
        self.sim = sim
        self.lock = threading.Lock()


class SimulatorDriver:
    def __init__(self, device_id: str, shared: SharedSimulation) -> None:
        self.device_id = device_id
        self.shared = shared

    def read(self, now: datetime) -> dict[str, Any]:
        with self.shared.lock:
            self.shared.sim.advance_to(now)
            return self.shared.sim.data(self.device_id)

    def close(self) -> None:
        return None
