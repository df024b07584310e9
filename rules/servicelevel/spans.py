"""Time spans as sorted, disjoint (start_ms, end_ms) lists: union, intersection, length."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Span", "clip", "intersect", "length", "union"]

Span = tuple[int, int]  # [start, end) in epoch ms


def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted and merged; spans that touch become one."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def intersect(a: list[Span], b: list[Span]) -> list[Span]:
    """Of two sorted, disjoint lists."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def clip(spans: Iterable[Span], start: int, end: int) -> list[Span]:
    return [(max(s, start), min(e, end)) for s, e in spans if e > start and s < end]


def length(spans: Iterable[Span]) -> int:
    return sum(e - s for s, e in spans)
