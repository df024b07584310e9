"""What the rules know about every device, updated from the MQTT stream.

Kept small and flat (slotted objects, plain ints of epoch ms) because the
timeout scan walks all of them every second: 100,000 devices must scan in
well under 100 ms. Liveness follows the readings' own timestamps, so a
replayed backlog from an hour ago does not make a device look alive now,
and a reading never moves a device's clock backwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from waystation.contract import EventType, Kind
from waystation.registry import Registry, Role, Utility

__all__ = ["DeviceSeen", "Observations"]


@dataclass(slots=True)
class DeviceSeen:
    device: str
    station: str
    kind: Kind
    timeout_ms: int
    main_meter: bool = False  # the station's main electricity meter
    last_seen_ms: int = 0  # newest reading (or online status) time
    deadline_ms: int = 0  # last_seen_ms + timeout_ms
    offline_since_ms: int | None = None  # reported offline (status, or its agent's will)
    # An agent's offline that waits for the grace period before it counts: a
    # will that came with the loss of our own connection (a broker shutting
    # down sends them all), or a retained one found on reconnecting.
    offline_held: bool = False
    # The number of the first rules probe sent after the offline arrived: it counts
    # once that probe came back (the broker was still serving after sending it).
    offline_probe: int = 0
    fault: str | None = None
    temp_c: float | None = None
    cold_since_ms: int | None = None
    register: float | None = None  # main meter energy, or door counter visits
    register_changed_ms: int | None = None
    energy_kwh: float | None = None  # a measured load's energy register
    loads_at_change: float = 0.0  # the station's load energy when the main meter last moved


@dataclass
class Observations:
    """Every registry device's last known state; stations list their devices."""

    devices: dict[str, DeviceSeen] = field(default_factory=dict)
    stations: dict[str, list[DeviceSeen]] = field(default_factory=dict)
    cold: set[str] = field(default_factory=set)  # dispensers below temperature
    faulty: set[str] = field(default_factory=set)
    watched: list[DeviceSeen] = field(default_factory=list)  # main meters and door counters
    min_temp_c: float = 80.0  # below this a dispenser is cold
    # The highest rules probe number that came back (`rules.outage.brokerwatch`):
    # an offline status counts once a probe sent after it is back, so one that
    # arrives together with the loss of our own connection can still be held.
    probe_back: int = -1

    @classmethod
    def from_registry(
        cls, registry: Registry, silent_intervals: float, min_temp_c: float, now_ms: int
    ) -> Observations:
        """All devices, each assumed seen at `now_ms` until warm-up or a reading says otherwise."""
        obs = cls(min_temp_c=min_temp_c)
        for station_id, station in registry.stations.items():
            members = obs.stations.setdefault(station_id, [])
            for device_id, spec in station.devices.items():
                timeout = spec.timeout or timedelta(
                    seconds=spec.interval.total_seconds() * silent_intervals
                )
                seen = DeviceSeen(
                    device_id,
                    station_id,
                    spec.kind,
                    int(timeout.total_seconds() * 1000),
                    main_meter=spec.kind is Kind.METER
                    and spec.utility is Utility.ELECTRICITY
                    and spec.role is Role.MAIN,
                )
                seen.last_seen_ms = now_ms
                seen.deadline_ms = now_ms + seen.timeout_ms
                obs.devices[device_id] = seen
                members.append(seen)
                if seen.main_meter or seen.kind is Kind.DOOR_COUNTER:
                    obs.watched.append(seen)
        return obs

    def warm(self, last_seen: Mapping[str, int]) -> None:
        """Last-seen times from InfluxDB, so a restart neither forgets an outage nor invents one."""
        for device, ts in last_seen.items():
            seen = self.devices.get(device)
            if seen is not None:
                seen.last_seen_ms = ts
                seen.deadline_ms = ts + seen.timeout_ms

    def reading(self, device: str, ts_ms: int, data: Mapping[str, Any]) -> None:
        seen = self.devices.get(device)
        if seen is None or ts_ms < seen.last_seen_ms:
            return  # unknown, or an older reading replayed: state moves forward only
        seen.last_seen_ms = ts_ms
        seen.deadline_ms = ts_ms + seen.timeout_ms
        match seen.kind:
            case Kind.WATER_DISPENSER:
                self._fault(seen, data.get("fault"))
                self._temperature(seen, data.get("temp_c"))
                seen.energy_kwh = data.get("energy_kwh_total")
            case Kind.CHARGING_LOCKER:
                slots = int(data.get("fault_slots") or 0)
                self._fault(seen, f"{slots} slot(s) faulty" if slots else None)
                seen.energy_kwh = data.get("energy_kwh_total")
            case Kind.METER if seen.main_meter:
                self._register(seen, data.get("energy_kwh_total"), ts_ms)
            case Kind.METER:
                seen.energy_kwh = data.get("energy_kwh_total")
            case Kind.DOOR_COUNTER:
                self._register(seen, data.get("in_total"), ts_ms)
            case _:
                pass

    def _register(self, seen: DeviceSeen, value: float | None, ts_ms: int) -> None:
        if value is None:
            return
        if seen.register is None and seen.register_changed_ms is not None:
            seen.register = value  # restored from a firing alert: keep when it last moved
        elif seen.register is None or value != seen.register:
            seen.register = value
            seen.register_changed_ms = ts_ms
            if seen.main_meter:
                seen.loads_at_change = self.station_loads_kwh(seen.station)

    def _fault(self, seen: DeviceSeen, fault: str | None) -> None:
        seen.fault = fault
        if fault:
            self.faulty.add(seen.device)
        else:
            self.faulty.discard(seen.device)

    def _temperature(self, seen: DeviceSeen, temp_c: float | None) -> None:
        seen.temp_c = temp_c
        if temp_c is not None and temp_c < self.min_temp_c:
            if seen.cold_since_ms is None:
                seen.cold_since_ms = seen.last_seen_ms
            self.cold.add(seen.device)
        else:
            seen.cold_since_ms = None
            self.cold.discard(seen.device)

    def event(self, device: str, kind: str, detail: Mapping[str, Any]) -> None:
        seen = self.devices.get(device)
        if seen is None:
            return
        if kind == EventType.FAULT:
            self._fault(seen, str(detail.get("code") or detail.get("reason") or "fault"))
        elif kind == EventType.FAULT_CLEARED:
            self._fault(seen, None)

    def status(
        self, device: str, online: bool, now_ms: int, *, held: bool = False, probe: int = 0
    ) -> None:
        """A status message; `held`: an agent's offline that waits for the grace period;
        `probe`: the number of the next probe the rules will send."""
        seen = self.devices.get(device)
        if seen is None:
            return
        if online:
            seen.offline_since_ms = None
            seen.offline_held = False
            if seen.kind is Kind.GATEWAY:  # the agent is back: it is alive now
                seen.last_seen_ms = max(seen.last_seen_ms, now_ms)
                seen.deadline_ms = seen.last_seen_ms + seen.timeout_ms
        elif seen.offline_since_ms is None:
            seen.offline_since_ms = now_ms
            seen.offline_held = held and seen.kind is Kind.GATEWAY
            seen.offline_probe = probe

    def hold_wills(self) -> int:
        """Hold the agents' offline statuses no probe has confirmed yet; how many."""
        held = 0
        for members in self.stations.values():
            for seen in members:
                if (
                    seen.kind is Kind.GATEWAY
                    and seen.offline_since_ms is not None
                    and seen.offline_probe > self.probe_back
                    and not seen.offline_held
                ):
                    seen.offline_held = True
                    held += 1
        return held

    def release_held(self, due: Callable[[int], bool]) -> int:
        """Held offline statuses count now if `due(offline_since_ms)`; how many were released."""
        released = 0
        for members in self.stations.values():
            for seen in members:
                if (
                    seen.offline_held
                    and seen.offline_since_ms is not None
                    and due(seen.offline_since_ms)
                ):
                    seen.offline_held = False
                    released += 1
        return released

    def reported_offline(self, seen: DeviceSeen, _now_ms: int) -> bool:
        """Said offline (a status or a will), confirmed and not held: evidence, not absence."""
        return (
            seen.offline_since_ms is not None
            and not seen.offline_held
            and seen.offline_probe <= self.probe_back
        )

    def station_loads_kwh(self, station: str) -> float:
        return sum(d.energy_kwh or 0.0 for d in self.stations.get(station, ()))

    def down(self, seen: DeviceSeen, now_ms: int) -> int | None:
        """Since when the device is down (reported offline, or silent past its timeout).

        A held or not yet settled offline counts as silence until it counts.
        """
        if seen.offline_since_ms is not None and self.reported_offline(seen, now_ms):
            return seen.offline_since_ms
        return seen.deadline_ms if now_ms > seen.deadline_ms else None
