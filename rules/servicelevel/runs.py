"""The issue's definitions, on one device's readings: when it was unreachable, cold or faulty.

- Unreachable across every gap between two consecutive readings more than
  its `timeout` apart, from the earlier reading to the later.
- Cold from the first reading below the minimum temperature to the first at
  or above it, when that run lasts at least `cold_for` (the whole run counts).
- Faulty from the first reading with a fault to the first without.

A run still open at the last reading known ends at `open_end` (the end of
what was read); the caller clips every span to the month.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rules.servicelevel.spans import Span

__all__ = ["flag_runs", "gaps"]


def gaps(times: Iterable[int], timeout_ms: int) -> list[Span]:
    """Between consecutive readings (sorted times) more than the timeout apart."""
    out: list[Span] = []
    previous: int | None = None
    for t in times:
        if previous is not None and t - previous > timeout_ms:
            out.append((previous, t))
        previous = t
    return out


def flag_runs(readings: Sequence[tuple[int, bool]], open_end: int, min_ms: int = 0) -> list[Span]:
    """From the first reading flagged to the first not, each run lasting at least `min_ms`."""
    out: list[Span] = []
    since: int | None = None
    for t, flagged in readings:
        if flagged and since is None:
            since = t
        elif not flagged and since is not None:
            if t - since >= min_ms:
                out.append((since, t))
            since = None
    if since is not None and open_end - since >= min_ms:
        out.append((since, open_end))
    return out
