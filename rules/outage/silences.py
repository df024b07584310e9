"""`waystation silence`: a station's silences in the rules service's state file."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rules.outage.statedb import RulesState
from waystation.durations import parse_duration
from waystation.language import Language
from waystation.localtime import local_text, read_local
from waystation.registry import Registry

__all__ = ["WORDS", "add_silence", "list_silences", "open_state", "parse_when", "remove_silence"]


# A silence longer than this is a typo (5000d) more often than a plan: it needs --force.
LONGEST = timedelta(days=30)


def parse_when(text: str, since: datetime, tz: ZoneInfo) -> datetime:
    """A duration after `since` (`2h`), or an ISO 8601 time; one without an offset is `tz`'s."""
    try:
        return since + parse_duration(text)
    except ValueError:
        pass
    try:
        return read_local(text, tz)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (2h) nor a time (2026-11-25 08:00, ISO 8601) | "
            f"{text!r} 既不是时长（如 2h）也不是时间（如 2026-11-25 08:00）"
        ) from None


def open_state(state_path: Path, *, create: bool = False) -> RulesState:
    """The rules service's state file; a missing one is refused unless asked to create it.

    A silence written to a new file in the wrong directory would silence nothing.
    """
    if not create and not state_path.exists():
        raise ValueError(
            f"no rules state file at {state_path}: give the one the rules service uses "
            "(--state or WAYSTATION_STATE, e.g. /var/lib/waystation/rules-state.db), or "
            "--create-state to start a new one | "
            f"{state_path} 没有规则状态文件：请指定 rules 服务使用的那个（--state 或 "
            "WAYSTATION_STATE，如 /var/lib/waystation/rules-state.db），或加 --create-state 新建"
        )
    return RulesState(state_path)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


WORDS: dict[Language, dict[str, str]] = {
    "zh": {
        "added": "静默 {id}：{station}，至 {until}",
        "none": "没有未结束的静默",
        "removed": "静默 {id} 已解除",
        "missing": "没有编号为 {id} 的静默",
        "maintenance": "维护",
    },
    "en": {
        "added": "silence {id}: {station} until {until}",
        "none": "no silence in force",
        "removed": "silence {id} removed",
        "missing": "no silence {id}",
        "maintenance": "maintenance",
    },
}


def add_silence(
    state_path: Path,
    station: str,
    until: str,
    *,
    registry: Registry,
    start: str | None = None,
    reason: str = "",
    create: bool = False,
    force: bool = False,
) -> str:
    if station not in registry.stations:
        close = difflib.get_close_matches(station, list(registry.stations), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}? | 是不是 {close[0]!r}？)" if close else ""
        raise ValueError(
            f"station {station!r} is not in the registry | 站点 {station!r} 不在站点登记文件中"
            + hint
        )
    tz = registry.station_timezone(station)
    now = datetime.now(UTC)
    begin = parse_when(start, now, tz) if start else now
    end = parse_when(until, begin, tz)  # a duration counts from the start
    if end <= now:
        raise ValueError("the silence would already be over | 这个静默时段已经过去了")
    if end <= begin:
        raise ValueError(
            f"the silence ends ({local_text(_ms(end), tz)}) before it starts "
            f"({local_text(_ms(begin), tz)}) | 静默的结束时间早于开始时间"
        )
    if end - max(begin, now) > LONGEST and not force:
        days = (end - max(begin, now)).days
        raise ValueError(
            f"a silence of {days} days (until {local_text(_ms(end), tz)}): longer than "
            f"{LONGEST.days} days needs --force | 静默 {days} 天（到 {local_text(_ms(end), tz)}）："
            f"超过 {LONGEST.days} 天需要加 --force"
        )
    state = open_state(state_path, create=create)
    try:
        sid = state.add_silence(station, _ms(begin), _ms(end), reason)
    finally:
        state.close()
    name = registry.stations[station].name
    return WORDS[registry.language]["added"].format(
        id=sid, station=name, until=local_text(_ms(end), tz)
    )


def list_silences(state_path: Path, registry: Registry) -> list[str]:
    state = open_state(state_path)
    try:
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        out = []
        for s in state.silences(now_ms):
            tz = (
                registry.station_timezone(s.station)
                if s.station in registry.stations
                else ZoneInfo(registry.timezone)
            )
            span = f"{local_text(s.start_ms, tz)} → {local_text(s.end_ms, tz)}"
            spec = registry.stations.get(s.station)
            name = spec.name if spec else s.station
            reason = s.reason or WORDS[registry.language]["maintenance"]
            out.append(f"{s.id}\t{name}\t{span}\t{reason}")
        return out or [WORDS[registry.language]["none"]]
    finally:
        state.close()


def remove_silence(state_path: Path, silence_id: int) -> bool:
    state = open_state(state_path)
    try:
        return state.remove_silence(silence_id)
    finally:
        state.close()
