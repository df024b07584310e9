"""The routing tree against the registry: what `check-config` and the service's start-up add.

Every value a route compares with `=`, `!=` or a list must be one the
registry (or the rules) can give: a station, party, model, device, rule,
severity or kind that exists (a typo in a party's id would otherwise send
that operator's alerts to the root). And every route must be reachable: the
check walks every alert the registry's stations can raise (each rule that
applies to each device) down the tree, and a route none of them enters is
an error (a sibling above it takes all its alerts, or its matchers fit no
station).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from rules.outage.detect import SEVERITY, Rule
from rules.outage.routeconfig import Label, Matcher, MatchOp
from rules.outage.routing import Node, Routing
from waystation.configerror import Invalid, Text
from waystation.contract import Kind
from waystation.registry import OperatingModel, Registry, Role, Utility

__all__ = ["SERVICE_RULES", "possible_alerts", "route_problems"]

KeyPath = tuple[str | int, ...]

# The service's own alerts are not routed (they go to the root's channels).
SERVICE_RULES = {Rule.MONITORING_LOST, Rule.CHANNEL_FAILING}


def possible_alerts(registry: Registry) -> Iterator[tuple[str, Rule, str | None]]:
    """(station, rule, device) of every alert the stations can raise."""
    for station_id, station in registry.stations.items():
        yield station_id, Rule.STATION_DOWN, None
        for device_id, spec in station.devices.items():
            yield station_id, Rule.DEVICE_FAULT, device_id  # fault events: any device
            if spec.kind is Kind.GATEWAY:
                yield station_id, Rule.AGENT_OFFLINE, device_id
                continue
            yield station_id, Rule.DEVICE_SILENT, device_id
            if spec.kind is Kind.WATER_DISPENSER:
                yield station_id, Rule.DISPENSER_COLD, device_id
            elif spec.kind is Kind.DOOR_COUNTER:
                yield station_id, Rule.DOOR_SILENT, device_id
            elif (
                spec.kind is Kind.METER
                and spec.utility is Utility.ELECTRICITY
                and (spec.role is Role.MAIN)
            ):
                yield station_id, Rule.METER_STUCK, device_id


def _known(registry: Registry) -> dict[Label, set[str]]:
    parties = set(registry.parties)
    operators = parties | {s.operator for s in registry.stations.values() if s.operator}
    unions = parties | {s.union for s in registry.stations.values() if s.union}
    return {
        Label.STATION: set(registry.stations),
        Label.OPERATOR: operators,
        Label.UNION: unions,
        Label.MODEL: {m.value for m in OperatingModel},
        Label.RULE: {r.value for r in Rule if r not in SERVICE_RULES},
        Label.SEVERITY: set(SEVERITY.values()),
        Label.KIND: {k.value for k in Kind},
        Label.DEVICE: {d for s in registry.stations.values() for d in s.devices},
    }


_WHAT = {
    Label.STATION: ("station", "站点"),
    Label.OPERATOR: ("party", "承担方"),
    Label.UNION: ("party", "承担方"),
    Label.MODEL: ("operating model", "运营模式"),
    Label.RULE: ("rule", "规则"),
    Label.SEVERITY: ("severity", "级别"),
    Label.KIND: ("device kind", "设备类型"),
    Label.DEVICE: ("device", "设备"),
}


def _unknown_value(label: Label, value: str, known: set[str]) -> Invalid:
    en, zh = _WHAT[label]
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.6)
    if close:
        fix = Text(f"did you mean {close[0]!r}?", f"是不是 {close[0]!r}？")
    elif len(known) <= 12:
        fix = Text(f"{en}s: {', '.join(sorted(known))}", f"可用的{zh}：{', '.join(sorted(known))}")
    else:
        fix = Text(f"see the registry for the {en}s", f"可用的{zh}见站点登记文件")
    return Invalid(
        Text(f"there is no {en} {value!r} ({label})", f"没有 {value!r} 这个{zh}（{label}）"),
        fix,
        code="unknown_value",
    )


def _value_problems(
    node: Node, path: KeyPath, known: dict[Label, set[str]]
) -> list[tuple[KeyPath, Invalid]]:
    out: list[tuple[KeyPath, Invalid]] = []
    for label, values in node.config.match.items():
        for i, value in enumerate(values):
            if value not in known[label]:
                at = (*path, "match", label.value, *((i,) if len(values) > 1 else ()))
                out.append((at, _unknown_value(label, value, known[label])))
    for i, m in enumerate(node.config.matchers):
        for value in _literals(m):
            if value not in known[m.label]:
                out.append(((*path, "matchers", i), _unknown_value(m.label, value, known[m.label])))
                break
    return out


_REGEX_SYNTAX = re.compile(r"[\\.^$*+?{}\[\]()]")


def _literals(m: Matcher) -> list[str]:
    """The values a matcher names outright: `=`/`!=` a non-empty value, or a regular
    expression that is only literals joined by `|` (`xiaoge-coffee|fengyun-logistics`:
    a typo in one of them would otherwise pass, the route still reached by the others)."""
    if m.op in (MatchOp.EQ, MatchOp.NE):
        return [m.value] if m.value else []
    if _REGEX_SYNTAX.search(m.value):
        return []
    return [v for v in m.value.split("|") if v]


def _unreachable(node: Node) -> Invalid:
    return Invalid(
        Text(
            f"no alert of the registry's stations reaches route {node.config.key()!r}: a route "
            "above it (without `continue`) takes all of them, or its matchers fit no station",
            f"登记文件里的站点没有任何告警会走到路由 {node.config.key()!r}：前面的同级路由"
            "（没写 `continue`）已全部接走，或它的匹配条件不符合任何站点",
        ),
        Text(
            "put specific routes above general ones, add `continue: true` to the route above, "
            "or correct the matchers (`waystation rules routes --station ID` shows where an "
            "alert goes)",
            "把具体的路由放在笼统的前面、给前面的路由加 `continue: true`，或改正匹配条件"
            "（`waystation rules routes --station 站点` 可查看告警的去向）",
        ),
        code="unreachable_route",
    )


def route_problems(routing: Routing, registry: Registry) -> list[tuple[KeyPath, Invalid]]:
    """Unknown values in matchers and unreachable routes, each at its place under `route`."""
    known = _known(registry)
    entered: set[str] = set()
    for station, rule, device in possible_alerts(registry):
        routing.matched(routing.labels(station, rule.value, device), entered)
    out: list[tuple[KeyPath, Invalid]] = []
    stack: list[tuple[Node, KeyPath]] = [(routing.root, ("route",))]
    while stack:
        node, path = stack.pop()
        problems = _value_problems(node, path, known)
        out += problems
        if not problems and node.id not in entered:
            out.append((path, _unreachable(node)))
            continue  # its children are unreachable too: one problem says it
        stack += [(child, (*path, "routes", i)) for i, child in enumerate(node.children)]
    return sorted(out, key=lambda p: [str(k) for k in p[0]])
