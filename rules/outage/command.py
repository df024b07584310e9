"""`waystation rules` and `waystation silence`: the service, and silences from the command line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rules.allocation.command import ReportJob
from rules.allocation.schedule import add_monthly_job
from rules.allocation.tariff import shipped_tariffs
from rules.outage.service import RulesService
from rules.outage.statedb import RulesState
from waystation.registry import Registry, parse_duration
from waystation.store import InfluxStore

__all__ = ["add_silence", "list_silences", "parse_when", "serve"]

log = logging.getLogger("waystation.rules")


def serve(
    service: RulesService,
    registry: Registry,
    store: InfluxStore,
    reports: Path,
    wait: Callable[[], None],
) -> None:
    """Run until `wait` returns; with parties in the registry, allocate every month too."""
    with service:
        if registry.parties:
            job = ReportJob(registry, shipped_tariffs(), store, reports)
            add_monthly_job(service.scheduler, job.run, ZoneInfo(registry.timezone))
        labels = ", ".join(sender.label for sender in service.senders)
        log.info("rules running: %d devices; channels: %s", registry.device_count, labels)
        wait()


def parse_when(text: str, now: datetime) -> datetime:
    """A duration from now (`2h`) or an ISO 8601 time with its zone."""
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (2h) nor a time (ISO 8601)") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r}: give the time zone, like 2026-11-25T08:00+08:00")
    return when


def add_silence(
    state_path: Path,
    station: str,
    until: str,
    *,
    start: str | None = None,
    reason: str = "maintenance",
    registry: Registry | None = None,
) -> str:
    if registry is not None and station not in registry.stations:
        raise ValueError(f"station {station!r} is not in the registry")
    now = datetime.now(UTC)
    begin = parse_when(start, now) if start else now
    end = parse_when(until, now)
    if end <= max(begin, now):
        raise ValueError("the silence would already be over")
    state = RulesState(state_path)
    try:
        sid = state.add_silence(
            station, int(begin.timestamp() * 1000), int(end.timestamp() * 1000), reason
        )
    finally:
        state.close()
    return f"silence {sid}: {station} until {end.isoformat(timespec='minutes')}"


def list_silences(state_path: Path) -> list[str]:
    state = RulesState(state_path)
    try:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        out = []
        for s in state.silences(now_ms):
            begin = datetime.fromtimestamp(s.start_ms / 1000, UTC).isoformat(timespec="minutes")
            end = datetime.fromtimestamp(s.end_ms / 1000, UTC).isoformat(timespec="minutes")
            out.append(f"{s.id}\t{s.station}\t{begin} → {end}\t{s.reason}")
        return out
    finally:
        state.close()


def remove_silence(state_path: Path, silence_id: int) -> bool:
    state = RulesState(state_path)
    try:
        return state.remove_silence(silence_id)
    finally:
        state.close()
