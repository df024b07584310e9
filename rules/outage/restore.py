"""After a restart: what the firing alerts say about the devices, until messages say otherwise.

Without this, the first pass after a restart would see no condition behind an
alert whose evidence is not in the stream yet (a cold dispenser's onset, a
stuck meter's last movement) and resolve it falsely. Each rule puts back the
observation that made it fire; the next real message corrects it.
"""

from __future__ import annotations

from rules.outage.alerts import Alert, AlertBook, AlertState
from rules.outage.config import Thresholds
from rules.outage.detect import SERVICE_GROUP, Rule
from rules.outage.observations import DeviceSeen, Observations
from waystation.contract import Kind

__all__ = ["restore_beliefs"]


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _silent_since(seen: DeviceSeen, since_ms: int) -> None:
    """Silent from `since_ms` until its next reading."""
    seen.last_seen_ms = min(seen.last_seen_ms, since_ms - seen.timeout_ms)
    seen.deadline_ms = seen.last_seen_ms + seen.timeout_ms


def _offline_since(seen: DeviceSeen, since_ms: int) -> None:
    """Offline until it says it is online (an agent's status); already a verdict, so it
    needs no probe to confirm it."""
    seen.offline_since_ms = seen.offline_since_ms or since_ms
    seen.offline_probe = -1


def _station(obs: Observations, alert: Alert) -> None:
    for member in obs.stations.get(alert.station, []):
        if member.kind is Kind.GATEWAY:
            _offline_since(member, alert.since_ms)
        else:
            _silent_since(member, alert.since_ms)


def _device(obs: Observations, alert: Alert, seen: DeviceSeen, th: Thresholds) -> None:
    match alert.rule:
        case Rule.AGENT_OFFLINE:
            _offline_since(seen, alert.since_ms)
        case Rule.DEVICE_SILENT:
            _silent_since(seen, alert.since_ms)
        case Rule.DISPENSER_COLD:
            seen.cold_since_ms = alert.since_ms - _ms(th.dispenser_cold_for.total_seconds())
            obs.cold.add(seen.device)
        case Rule.DEVICE_FAULT:
            seen.fault = alert.detail or "fault"
            obs.faulty.add(seen.device)
        case Rule.METER_STUCK:
            seen.register_changed_ms = alert.since_ms - _ms(th.meter_stuck_for.total_seconds())
        case Rule.DOOR_SILENT:
            seen.register_changed_ms = alert.since_ms - _ms(th.door_silent_for.total_seconds())
        case _:
            pass


def restore_beliefs(obs: Observations, book: AlertBook, th: Thresholds) -> None:
    for alert in book.alerts.values():
        if alert.state is not AlertState.FIRING or alert.station == SERVICE_GROUP:
            continue
        if alert.rule is Rule.STATION_DOWN:
            _station(obs, alert)
        elif (seen := obs.devices.get(alert.device or "")) is not None:
            _device(obs, alert, seen, th)
