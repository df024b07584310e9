"""Channels are known by name: unique names, and routes that name only channels that exist.

A channel's name is its `name`, else its `type`. Notices wait in the state
file under that name, so it must not depend on the channel's place in the
list: a type used twice needs a `name` on each but one, and two channels
may not share a name.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from rules.outage.routeconfig import RouteConfig, root_problems
from waystation.configerror import Invalid, Text

__all__ = ["channel_name_problems", "route_name_problems"]

Located = tuple[tuple[str | int, ...], Invalid]


class _Named(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def label(self) -> str: ...


def channel_name_problems(channels: Sequence[_Named]) -> list[Located]:
    out: list[Located] = []
    seen: dict[str, int] = {}
    unnamed = Counter(c.type for c in channels if c.name is None)
    for i, c in enumerate(channels):
        if c.label in seen:
            first = seen[c.label]
            if c.name is None and unnamed[c.type] > 1:
                what = Text(
                    f"a second {c.type} channel without a name (the first is channel {first + 1})",
                    f"第二个没有 name 的 {c.type} 通道（第一个是第 {first + 1} 个通道）",
                )
            else:
                what = Text(
                    f"channel name {c.label!r} is also used by channel {first + 1}",
                    f"通道名 {c.label!r} 已被第 {first + 1} 个通道使用",
                )
            out.append(((("channels", i)), Invalid(what, Text(
                "give each channel of a type used twice its own `name` (routes and the state "
                "file know channels by name)",
                "同一类型用了两次时，每个通道写上自己的 `name`（路由和状态文件按名字认通道）",
            ), code="duplicate_channel")))  # fmt: skip
        else:
            seen[c.label] = i
    return out


def _unknown(name: str, known: set[str]) -> Invalid:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    listed = ", ".join(sorted(known))
    return Invalid(
        Text(f"there is no channel named {name!r}", f"没有名为 {name!r} 的通道"),
        Text(f"did you mean {close[0]!r}?", f"是不是 {close[0]!r}？") if close else
        Text(f"channels: {listed}", f"已有的通道：{listed}"),
        code="unknown_channel",
    )  # fmt: skip


def _names(route: RouteConfig, path: tuple[str | int, ...], known: set[str]) -> list[Located]:
    out: list[Located] = []
    for key in ("channels", "escalate_to"):
        for i, name in enumerate(getattr(route, key) or []):
            if name not in known:
                out.append(((*path, key, i), _unknown(name, known)))
    for i, child in enumerate(route.routes):
        out += _names(child, (*path, "routes", i), known)
    return out


def route_name_problems(route: RouteConfig, known: set[str]) -> list[Located]:
    """The root's shape, and every channel a route names exists."""
    root = [(("route", *path), invalid) for path, invalid in root_problems(route)]
    return root + _names(route, ("route",), known)
