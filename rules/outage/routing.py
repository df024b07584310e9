"""Which channels an alert reaches: the routing tree at run time, after Alertmanager.

An alert enters at the root; each child whose matchers all match takes it
and it goes on down that child; the first matching child stops the search
among its siblings unless it says `continue`; where no child matches, the
route itself takes it. Every route that takes an alert is a `Target`: its
channels and timers. A route with an escalation adds a second target, its
`escalate_to` channels, which an alert joins once it has fired for
`escalate_after` (not while silenced or inhibited), notified once and never
repeated; the routes below that inherit it share that one target, so an
alert reaching two of them (`continue`) is escalated once.

The service's own alerts (`monitoring_lost`, `channel_failing`) are not a
station's: they go to the root's channels and nowhere else. Without a
`route:` in the settings the root is every channel, so every channel gets
every alert, as before routing existed.

Groups are per target and station, so a target's id is stable across
restarts and edits elsewhere in the tree: the root is `root`, a child is
its parent's id, `/`, and its name (else its matchers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from rules.outage.detect import SERVICE_GROUP, SEVERITY, Rule
from rules.outage.routeconfig import NEVER, Label, Matcher, MatchOp, RouteConfig
from waystation.registry import Registry

__all__ = ["ESCALATION", "ROOT", "Router", "Routing", "SingleRoute", "Target", "Timers"]

ROOT = "root"
ESCALATION = "!escalation"  # suffix of a route's escalation target


@dataclass(frozen=True, slots=True)
class Timers:
    wait_ms: int
    interval_ms: int
    repeat_ms: int


@dataclass(frozen=True, slots=True)
class Target:
    """Where a route sends: its channels with its timers (or its escalation's)."""

    id: str
    channels: tuple[str, ...]
    timers: Timers
    escalate_after_ms: int | None = None  # an escalation target: joined after this long firing

    @property
    def escalation(self) -> bool:
        return self.escalate_after_ms is not None


class Router(Protocol):
    """What the alert book asks of the routing: an alert's targets, a target by id."""

    def targets(self, station: str, rule: str, device: str | None) -> tuple[Target, ...]: ...

    def target(self, target_id: str) -> Target | None: ...


@dataclass(frozen=True)
class SingleRoute:
    """Every alert to one target, the root: what a config without `route:` amounts to."""

    root: Target

    def targets(self, station: str, rule: str, device: str | None) -> tuple[Target, ...]:  # noqa: ARG002 - the protocol's signature
        return (self.root,)

    def target(self, target_id: str) -> Target | None:
        return self.root if target_id == self.root.id else None


@dataclass(frozen=True)
class Node:
    id: str
    config: RouteConfig
    matchers: tuple[Matcher, ...]
    target: Target
    escalation: Target | None
    children: tuple[Node, ...] = ()

    def matches(self, labels: dict[Label, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _matchers(route: RouteConfig) -> tuple[Matcher, ...]:
    out = []
    for label, values in route.match.items():
        if len(values) == 1:
            out.append(Matcher(label, MatchOp.EQ, values[0]))
        else:  # any of a list: an anchored alternation of the literal values
            alternation = "|".join(re.escape(v) for v in values)
            out.append(Matcher(label, MatchOp.RE, f"(?:{alternation})"))
    return (*out, *route.matchers)


@dataclass(frozen=True, slots=True)
class _Inherited:
    channels: tuple[str, ...]
    timers: Timers
    # The escalation of the nearest route (this one or above) that sets one: one target
    # however many of its descendants an alert reaches, so it is escalated once.
    escalation: Target | None


def _build(route: RouteConfig, node_id: str, parent: _Inherited) -> Node:
    timers = Timers(
        _ms(route.group_wait) if route.group_wait else parent.timers.wait_ms,
        _ms(route.group_interval) if route.group_interval else parent.timers.interval_ms,
        _ms(route.repeat_interval) if route.repeat_interval else parent.timers.repeat_ms,
    )
    escalation = parent.escalation
    if route.escalate_after is not None and route.escalate_to:
        escalation = Target(
            node_id + ESCALATION,
            tuple(route.escalate_to),
            Timers(0, timers.interval_ms, _ms(NEVER)),
            _ms(route.escalate_after),
        )
    own = _Inherited(
        tuple(route.channels) if route.channels is not None else parent.channels,
        timers,
        escalation,
    )
    seen: dict[str, int] = {}
    children = []
    for child in route.routes:
        key = child.key()
        seen[key] = seen.get(key, 0) + 1
        child_id = f"{node_id}/{key}" + (f"#{seen[key]}" if seen[key] > 1 else "")
        children.append(_build(child, child_id, own))
    return Node(
        node_id,
        route,
        _matchers(route),
        Target(node_id, own.channels, timers),
        escalation,
        tuple(children),
    )


@dataclass
class Routing:
    """The tree, and each alert's targets (computed once per alert key)."""

    registry: Registry
    root: Node
    _cache: dict[tuple[str, str, str | None], tuple[Target, ...]] = field(default_factory=dict)
    _ids: dict[str, Target] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        registry: Registry,
        route: RouteConfig | None,
        channels: list[str],
        default: Timers,
    ) -> Routing:
        """From the settings' `route:`; none: a root sending to every channel."""
        top = _Inherited(tuple(channels), default, None)
        return cls(registry, _build(route or RouteConfig(channels=channels), ROOT, top))

    def labels(self, station: str, rule: str, device: str | None) -> dict[Label, str]:
        spec = self.registry.stations.get(station)
        out = {Label.STATION: station, Label.RULE: rule}
        severity = SEVERITY.get(Rule(rule)) if rule in Rule.__members__.values() else None
        if severity:
            out[Label.SEVERITY] = severity
        if device:
            out[Label.DEVICE] = device
            found = self.registry.device(device)
            if found is not None:
                out[Label.KIND] = found[1].kind.value
        if spec is not None:
            out[Label.MODEL] = spec.model.value
            if spec.operator:
                out[Label.OPERATOR] = spec.operator
            union = spec.union or self._only_union()
            if union:
                out[Label.UNION] = union
        return out

    def _only_union(self) -> str | None:
        unions = [p for p, s in self.registry.parties.items() if s.type.value == "union"]
        return unions[0] if len(unions) == 1 else None

    def matched(self, labels: dict[Label, str], entered: set[str] | None = None) -> list[Node]:
        """The routes that take an alert with these labels, in tree order.

        `entered` collects every route the alert entered on its way (for finding
        routes no alert can reach).
        """
        out: list[Node] = []
        self._walk(self.root, labels, out, entered)
        return out

    def _walk(
        self, node: Node, labels: dict[Label, str], out: list[Node], entered: set[str] | None
    ) -> None:
        if entered is not None:
            entered.add(node.id)
        found = False
        for child in node.children:
            if not child.matches(labels):
                continue
            found = True
            self._walk(child, labels, out, entered)
            if not child.config.continue_:
                break
        if not found:
            out.append(node)

    def targets(self, station: str, rule: str, device: str | None) -> tuple[Target, ...]:
        """Where an alert goes: each matched route, then its escalation if it has one."""
        key = (station, rule, device)
        if key not in self._cache:
            if station == SERVICE_GROUP:
                self._cache[key] = (self.root.target,)
            else:
                nodes = self.matched(self.labels(station, rule, device))
                self._cache[key] = tuple(  # an escalation shared by two of them: once
                    dict.fromkeys(t for n in nodes for t in (n.target, n.escalation) if t)
                )
        return self._cache[key]

    def target(self, target_id: str) -> Target | None:
        if not self._ids:
            self._ids = {
                t.id: t for n in self.nodes() for t in (n.target, n.escalation) if t is not None
            }
        return self._ids.get(target_id)

    def nodes(self) -> list[Node]:
        out: list[Node] = []
        stack = [self.root]
        while stack:
            node = stack.pop(0)
            out.append(node)
            stack[:0] = node.children
        return out
