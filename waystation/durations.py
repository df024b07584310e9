"""Durations as config files write them: `90s`, `5m`, `1.5h`, `2d`, or a number of seconds."""

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


def parse_duration(value: Any) -> timedelta:
    """`90s`, `5m`, `1.5h`, `2d`, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise _not_a_duration(value)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise _not_a_duration(value)
    if seconds <= 0:
        raise Invalid(
            Text(f"duration {value!r} must be positive", f"时长 {value!r} 必须大于零"),
            code="bad_duration",
        )
    return timedelta(seconds=seconds)


# A duration field: `90s`, `5m`, `1h`, `2d` or seconds in config files.
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
