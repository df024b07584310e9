"""A station's opening hours in a month, as spans of epoch ms (local time, DST-safe)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from rules.servicelevel.spans import Span, clip, union
from waystation.registry import parse_opening_hours

__all__ = ["opening_spans"]


def _ms(day: date, minute: int, tz: ZoneInfo) -> int:
    """The local day's wall-clock minute (aware arithmetic is wall-clock in its zone)."""
    wall = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(minutes=minute)
    return int(wall.timestamp() * 1000)


def opening_spans(
    hours: str | None, tz: ZoneInfo, days: tuple[date, date], window: Span
) -> list[Span]:
    """Open time between `start_ms` and `end_ms` (the month, local `days` first to last).

    None means open around the clock; `22:00-06:00` runs past midnight, so the
    day before the month's first contributes its night.
    """
    first, last = days
    start_ms, end_ms = window
    if hours is None:
        return [(start_ms, end_ms)]
    open_min, close_min = parse_opening_hours(hours)
    spans = []
    day = first - timedelta(days=1)
    close_min = close_min if close_min > open_min else close_min + 1440  # past midnight
    while day <= last:
        spans.append((_ms(day, open_min, tz), _ms(day, close_min, tz)))
        day += timedelta(days=1)
    return union(clip(spans, start_ms, end_ms))
