"""The outage rules (SPEC §7): from observations to the conditions that hold now.

A condition is a finding with a stable key (`rule:station:device`), the time
it began and a detail (a token that rules.outage.details words for people).
When every device of a station is down, the station's own condition is
raised and every other condition there is marked inhibited: operators get
one station alert, not one per device.

A condition drawn from missing data (silence, a will not yet confirmed) is
marked `absence`: while the service cannot trust the stream (disconnected,
or in its grace period after reconnecting) no new such verdict is given
(`withhold_absence`). The service's own conditions (`monitoring_lost`,
`channel_failing`) belong to the `SERVICE_GROUP`, not to a station.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from rules.outage.config import Thresholds
from rules.outage.observations import DeviceSeen, Observations
from waystation.contract import Kind
from waystation.registry import Registry

__all__ = ["ABSENCE_RULES", "SERVICE_GROUP", "SEVERITY", "Condition", "Rule", "detect",
           "withhold_absence"]  # fmt: skip

# The group of the service's own alerts: not a station id (ids start with [a-z0-9]).
SERVICE_GROUP = "_service"


class Rule(StrEnum):
    STATION_DOWN = "station_down"
    AGENT_OFFLINE = "agent_offline"
    DEVICE_SILENT = "device_silent"
    DISPENSER_COLD = "dispenser_cold"
    DEVICE_FAULT = "device_fault"
    METER_STUCK = "meter_stuck"
    DOOR_SILENT = "door_silent"
    MONITORING_LOST = "monitoring_lost"  # the rules service cannot reach the broker
    CHANNEL_FAILING = "channel_failing"  # a notification channel fails for too long


# The rules that absence of data can raise; a will counts as evidence, not absence.
ABSENCE_RULES = frozenset(
    {Rule.AGENT_OFFLINE, Rule.STATION_DOWN, Rule.DEVICE_SILENT, Rule.DOOR_SILENT}
)

SEVERITY = {
    Rule.STATION_DOWN: "critical",
    Rule.AGENT_OFFLINE: "critical",
    Rule.DEVICE_SILENT: "warning",
    Rule.DISPENSER_COLD: "warning",
    Rule.DEVICE_FAULT: "warning",
    Rule.METER_STUCK: "warning",
    Rule.DOOR_SILENT: "info",
    Rule.MONITORING_LOST: "critical",
    Rule.CHANNEL_FAILING: "critical",
}


@dataclass(frozen=True)
class Condition:
    rule: Rule
    station: str
    device: str | None
    since_ms: int
    detail: str = ""
    inhibited: bool = False
    absence: bool = False  # drawn from missing data, not from something a device said

    @property
    def key(self) -> str:
        """Stable across restarts and re-detections: the dedup key."""
        return f"{self.rule}:{self.station}:{self.device or '*'}"


class _Detector:
    def __init__(self, obs: Observations, registry: Registry, th: Thresholds, now_ms: int) -> None:
        self.obs = obs
        self.registry = registry
        self.th = th
        self.now_ms = now_ms
        self.out: dict[str, Condition] = {}
        self._open: dict[tuple[str, str | None], int | None] = {}

    def add(self, cond: Condition) -> None:
        self.out[cond.key] = cond

    def open_since_ms(self, station: str) -> int | None:
        """When the station's current opening began, or None while it is closed."""
        spec = self.registry.stations[station]
        key = (spec.timezone or self.registry.timezone, spec.opening_hours)
        if key not in self._open:  # stations share a few zones and hours: computed once each
            local = datetime.fromtimestamp(self.now_ms / 1000, UTC).astimezone(ZoneInfo(key[0]))
            since = spec.open_since(local)
            self._open[key] = None if since is None else int(since.timestamp() * 1000)
        return self._open[key]

    def liveness(self) -> set[str]:
        """Device and agent conditions, or one station condition; the stations that are down."""
        now = self.now_ms
        downs: dict[str, list[tuple[DeviceSeen, int]]] = {}
        for seen in self.obs.devices.values():
            if seen.offline_since_ms is None and now <= seen.deadline_ms:
                continue  # the common case, kept cheap: the scan walks every device
            since = self.obs.down(seen, now)
            if since is not None:
                downs.setdefault(seen.station, []).append((seen, since))
        stations_down = set()
        for station, down in downs.items():
            members = self.obs.stations[station]
            agents = [m for m in members if m.kind is Kind.GATEWAY]
            agents_down = sum(1 for seen, _ in down if seen.kind is Kind.GATEWAY)
            # Down when every device is, or every agent is: nothing can report then.
            whole = len(down) == len(members) or 0 < len(agents) == agents_down
            if whole:
                stations_down.add(station)
                # Evidence, not absence, only when every agent's own will said it.
                told = bool(agents) and all(
                    self.obs.reported_offline(seen, now)
                    for seen, _ in down
                    if seen.kind is Kind.GATEWAY
                )
                last = max(since for seen, since in down if seen.kind is Kind.GATEWAY or not agents)
                if len(down) == len(members):
                    detail = f"devices_down:{len(down)}/{len(members)}"
                elif len(agents) == 1:
                    detail = "agent_offline"
                else:
                    detail = f"agents_offline:{len(agents)}"
                self.add(
                    Condition(Rule.STATION_DOWN, station, None, last, detail, absence=not told)
                )
            for seen, since in down:
                rule = Rule.AGENT_OFFLINE if seen.kind is Kind.GATEWAY else Rule.DEVICE_SILENT
                told = self.obs.reported_offline(seen, now)
                detail = "offline" if told else "silent"
                self.add(
                    Condition(
                        rule, station, seen.device, since, detail, inhibited=whole, absence=not told
                    )
                )
        return stations_down

    def dispensers(self, down: set[str]) -> None:
        cold_for = int(self.th.dispenser_cold_for.total_seconds() * 1000)
        for device in self.obs.cold:
            seen = self.obs.devices[device]
            since = seen.cold_since_ms
            if since is None or self.obs.down(seen, self.now_ms) is not None:
                continue
            if self.open_since_ms(seen.station) is None or self.now_ms - since < cold_for:
                continue
            self.add(
                Condition(
                    Rule.DISPENSER_COLD,
                    seen.station,
                    device,
                    since + cold_for,
                    f"temp_c:{seen.temp_c:.1f}" if seen.temp_c is not None else "",
                    inhibited=seen.station in down,
                )
            )

    def faults(self, down: set[str]) -> None:
        for device in self.obs.faulty:
            seen = self.obs.devices[device]
            self.add(
                Condition(
                    Rule.DEVICE_FAULT,
                    seen.station,
                    device,
                    seen.last_seen_ms,
                    seen.fault or "",
                    inhibited=seen.station in down,
                )
            )

    def registers(self, down: set[str]) -> None:
        stuck_for = int(self.th.meter_stuck_for.total_seconds() * 1000)
        door_for = int(self.th.door_silent_for.total_seconds() * 1000)
        now = self.now_ms
        for seen in self.obs.watched:
            changed = seen.register_changed_ms
            if changed is None or seen.offline_since_ms is not None or now > seen.deadline_ms:
                continue  # no register yet, or the device is down (its own alert covers it)
            if seen.main_meter:
                if now - changed < stuck_for:
                    continue
                grown = self.obs.station_loads_kwh(seen.station) - seen.loads_at_change
                if grown >= self.th.meter_stuck_min_kwh:
                    self.add(
                        Condition(
                            Rule.METER_STUCK,
                            seen.station,
                            seen.device,
                            changed + stuck_for,
                            f"loads_kwh:{grown:.2f}",
                            inhibited=seen.station in down,
                        )
                    )
            elif seen.kind is Kind.DOOR_COUNTER and now - changed >= door_for:
                opened = self.open_since_ms(seen.station)
                if opened is None:
                    continue
                quiet_from = max(changed, opened)
                if now - quiet_from >= door_for:
                    self.add(
                        Condition(
                            Rule.DOOR_SILENT,
                            seen.station,
                            seen.device,
                            quiet_from + door_for,
                            inhibited=seen.station in down,
                            absence=True,
                        )
                    )


def detect(
    obs: Observations, registry: Registry, thresholds: Thresholds, now_ms: int
) -> dict[str, Condition]:
    """Every condition that holds at `now_ms`, keyed by its dedup key."""
    d = _Detector(obs, registry, thresholds, now_ms)
    down = d.liveness()
    d.dispensers(down)
    d.faults(down)
    d.registers(down)
    return d.out


def withhold_absence(
    conditions: Mapping[str, Condition], keep: Callable[[Condition], bool]
) -> dict[str, Condition]:
    """No data, no verdict: drop the absence conditions `keep` does not allow.

    The service keeps those that are already alerts (an alert neither resolves
    nor re-fires because the stream went quiet; a device that reports again
    clears it as usual) and those whose grace is over. A station outage
    withheld here inhibits nothing.
    """
    out: dict[str, Condition] = {}
    withheld_stations: set[str] = set()
    for key, cond in conditions.items():
        if cond.absence and not keep(cond):
            if cond.rule is Rule.STATION_DOWN:
                withheld_stations.add(cond.station)
            continue
        out[key] = cond
    if withheld_stations:
        for key, cond in out.items():
            if cond.inhibited and cond.station in withheld_stations:
                out[key] = replace(cond, inhibited=False)
    return out
