"""Times as a person reads them: in the station's or registry's zone, the offset shown.

Every time printed, exported or notified goes through `local_text`, so a
reader in Dazhou sees 08:00 +08:00, never 00:00 UTC; and a time typed without
an offset is read in the registry's zone (`read_local`), not refused.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["local_text", "offset_text", "read_local"]


def offset_text(when: datetime) -> str:
    """`+08:00`: the zone's offset at that instant (language-neutral, unlike a zone's name)."""
    offset = when.utcoffset()
    if offset is None:
        return ""
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def local_text(ms: int, tz: tzinfo, *, year: bool = True, zone: bool = True) -> str:
    """Epoch ms as `2026-10-31 08:00 +08:00` in `tz` (`10-31 08:00 +08:00` without the year)."""
    when = datetime.fromtimestamp(ms / 1000, tz)
    text = when.strftime("%Y-%m-%d %H:%M" if year else "%m-%d %H:%M")
    return f"{text} {offset_text(when)}" if zone else text


def read_local(text: str, zone: str | ZoneInfo) -> datetime:
    """An ISO 8601 time; without an offset it is read as wall-clock time in `zone`.

    Raises ValueError (from `datetime.fromisoformat`) when the text is no time.
    """
    when = datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone))
    return when
