"""The scorecard's services, which device kinds provide each, and the thresholds it uses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from waystation.contract import Kind
from waystation.registry import DeviceSpec

__all__ = ["PROVIDERS", "Definitions", "Service", "timeout_ms"]


class Service(StrEnum):
    STATION = "station"  # the station's gateway, i.e. its edge agent
    HOT_WATER = "hot_water"  # dispensers
    CHARGING = "charging"  # charging lockers
    VISITS = "visits"  # door counters


PROVIDERS = {
    Service.STATION: Kind.GATEWAY,
    Service.HOT_WATER: Kind.WATER_DISPENSER,
    Service.CHARGING: Kind.CHARGING_LOCKER,
    Service.VISITS: Kind.DOOR_COUNTER,
}


@dataclass(frozen=True, slots=True)
class Definitions:
    """From the rules config (`thresholds`): the same figures the alerts use."""

    min_temp_c: float = 80.0  # dispenser_min_temp_c
    cold_for_ms: int = 20 * 60_000  # dispenser_cold_for
    silent_intervals: float = 3.0  # a device's timeout when the registry gives none


def timeout_ms(spec: DeviceSpec, defs: Definitions) -> int:
    """The registry's `timeout`, else `silent_intervals` reporting intervals."""
    if spec.timeout is not None:
        return int(spec.timeout.total_seconds() * 1000)
    return int(spec.interval.total_seconds() * defs.silent_intervals * 1000)
