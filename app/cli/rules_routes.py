"""`waystation rules routes`: the channels a station's alerts reach (`amtool config routes test`).

For each alert the station can raise (each rule on each device it applies
to; narrowed by `--rule`, `--severity`, `--device`), the routes that take it
with their channels and timers, and the escalation with its delay. The
routing config is checked against the registry first; its problems are
printed, but the table is still shown (it is how one finds out why a route
is unreachable), unless the files cannot be read at all.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from app.checks import Plan, check
from app.cli.common import EXIT_CONFIG, EXIT_OK, RULES_CONFIG_ENV, env_path, settings
from rules.outage.detect import SEVERITY, Rule
from rules.outage.routecheck import SERVICE_RULES, possible_alerts
from rules.outage.routeconfig import Label
from rules.outage.routing import Routing, Target, Timers
from waystation.configerror import render_problems
from waystation.durations import format_duration
from waystation.registry import Registry

__all__ = ["add_arguments", "show_routes"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--station", help="`rules routes`: the station whose alerts to route")
    p.add_argument("--rule", help="`rules routes`: only this rule (e.g. station_down)")
    p.add_argument("--severity", help="`rules routes`: only rules of this severity")
    p.add_argument("--device", help="`rules routes`: only this device's alerts")


def _duration(ms: int) -> str:
    from datetime import timedelta

    return format_duration(timedelta(milliseconds=ms))


def _timers(t: Timers) -> str:
    return f"{_duration(t.wait_ms)}/{_duration(t.interval_ms)}/{_duration(t.repeat_ms)}"


def _target(t: Target) -> str:
    if t.escalate_after_ms is not None:
        return (f"  {_duration(t.escalate_after_ms)} 后升级 escalated after "
                f"{_duration(t.escalate_after_ms)} → {', '.join(t.channels)}")  # fmt: skip
    return f"  {t.id} → {', '.join(t.channels)}  (wait/interval/repeat {_timers(t.timers)})"


def _did_you_mean(value: str, known: list[str]) -> str:
    close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
    if close:
        return f"是不是 did you mean {close[0]!r}?"
    return f"可用 one of: {', '.join(known)}" if len(known) <= 12 else ""


def _unknown_filter(args: argparse.Namespace, registry: Registry, station: str) -> str | None:
    """A --rule, --severity or --device that no alert of the station can have, worded."""
    rules = [r.value for r in Rule]
    if args.rule and args.rule not in rules:
        return f"没有规则 no rule {args.rule!r}; {_did_you_mean(args.rule, rules)}"
    severities = sorted(set(SEVERITY.values()))
    if args.severity and args.severity not in severities:
        return (f"没有级别 no severity {args.severity!r}; "
                f"{_did_you_mean(args.severity, severities)}")  # fmt: skip
    devices = sorted(registry.stations[station].devices)
    if args.device and args.device not in devices:
        elsewhere = registry.device(args.device)
        where = (f"它属于站点 it is at station {elsewhere[0]}" if elsewhere is not None
                 else _did_you_mean(args.device, devices))  # fmt: skip
        return f"站点 {station} 没有设备 no device {args.device!r} at station {station}; {where}"
    return None


def show_routes(args: argparse.Namespace) -> int:
    if not args.station:
        print("waystation rules routes: --station ID is needed 需要指定 --station 站点",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    s = settings(args)
    result = check(
        Plan(registry=Path(s.registry), rules=True,
             rules_config=env_path(args.rules_config, RULES_CONFIG_ENV))
    )  # fmt: skip
    if result.problems:
        print(render_problems(result.problems), file=sys.stderr)
    registry, config = result.registry, result.rules
    if registry is None or config is None:
        return EXIT_CONFIG
    station = registry.stations.get(args.station)
    mistake = (f"登记文件中没有站点 no station {args.station!r} in {s.registry}"
               if station is None else _unknown_filter(args, registry, args.station))  # fmt: skip
    if station is None or mistake is not None:
        print(f"waystation rules routes: {mistake}", file=sys.stderr)
        return EXIT_CONFIG
    timing = config.timing
    routing = Routing.build(
        registry,
        config.route,
        [c.label for c in config.channels],
        Timers(*(int(d.total_seconds() * 1000) for d in
                 (timing.group_wait, timing.group_interval, timing.repeat_interval))),
    )  # fmt: skip
    if args.rule in SERVICE_RULES:
        print(f"{args.rule}: 服务自身的告警只发到根路由的通道 the service's own alerts go to the "
              f"root's channels only → {', '.join(routing.root.target.channels)}")  # fmt: skip
        return EXIT_CONFIG if result.errors else EXIT_OK
    operator = station.operator or "-"
    party = registry.parties.get(operator)
    print(f"{station.name} ({args.station}); 运营方 operator: "
          f"{party.name + ' ' if party else ''}{operator}")  # fmt: skip
    if not _print_alerts(routing, registry, args):
        print("没有符合条件的告警 no alert of this station fits --rule/--severity/--device",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    return EXIT_CONFIG if result.errors else EXIT_OK


def _print_alerts(routing: Routing, registry: Registry, args: argparse.Namespace) -> int:
    """Each alert of the station that fits the filters, with its targets; how many."""
    shown = 0
    for station_id, rule, device in possible_alerts(registry):
        labels = routing.labels(station_id, rule.value, device)
        if station_id != args.station or (args.rule and rule.value != args.rule):
            continue
        if (args.severity and labels.get(Label.SEVERITY) != args.severity) or (
            args.device and device != args.device
        ):
            continue
        shown += 1
        print(f"{rule.value} [{labels.get(Label.SEVERITY, '')}] {device or '(station)'}")
        for target in routing.targets(station_id, rule.value, device):
            print(_target(target))
    return shown
