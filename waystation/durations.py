"""Durations as config files write them: `90s`, `5m`, `1.5h`, `2d`.

A number without a unit is refused, as on the command line: `interval: 15`
meant 15 minutes far more often than 15 seconds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

from waystation.configerror import Invalid, Text

__all__ = ["DurationField", "format_duration", "parse_duration"]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _not_a_duration(value: Any) -> Invalid:
    return Invalid(
        Text(
            f"{value!r} is not a duration like 60s, 5m, 1h or 2d",
            f"{value!r} 不是时长，应写成 60s、5m、1h 或 2d 这样",
        ),
        Text(
            "write a number and a unit: ms, s, m (minutes), h or d",
            "写一个数字加单位：ms、s、m（分钟）、h 或 d",
        ),
        code="bad_duration",
    )


def _no_unit(value: float) -> Invalid:
    shown = f"{value:g}"
    return Invalid(
        Text(
            f"{shown} has no unit: seconds, minutes or hours?",
            f"{shown} 没有单位：是秒、分钟还是小时？",
        ),
        Text(
            f"write the unit: {shown}s, {shown}m or {shown}h (ms, s, m, h, d)",
            f"写上单位：{shown}s、{shown}m 或 {shown}h（可用 ms、s、m、h、d）",
        ),
        code="duration_without_unit",
    )


def parse_duration(value: Any) -> timedelta:
    """`90s`, `5m`, `1.5h`, `2d`; a bare number is refused (which unit was meant?)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _no_unit(value)
    if isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise _not_a_duration(value)
    if seconds <= 0:
        raise Invalid(
            Text(f"duration {value!r} must be positive", f"时长 {value!r} 必须大于零"),
            code="bad_duration",
        )
    return timedelta(seconds=seconds)


# A duration field: `90s`, `5m`, `1h`, `2d` in config files (a unit is required).
DurationField = Annotated[timedelta, BeforeValidator(parse_duration)]


def format_duration(value: timedelta) -> str:
    """The way config files write it: `90s`, `5m`, `2h`, `62d` (`63.7d` when not whole)."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:g}s"
