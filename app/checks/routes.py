"""The rules' routing tree against the registry: unknown parties, stations; unreachable routes;
and whether the service's own alerts reach anyone."""

from __future__ import annotations

from app.checks.plan import Checked
from rules.outage.config import RulesConfig
from rules.outage.routecheck import route_problems
from rules.outage.routing import Routing, Timers
from waystation.configerror import Problem, Severity, Text
from waystation.configfile import Document
from waystation.registry import Registry

__all__ = ["check_routes"]


def check_routes(config: RulesConfig, document: Document, registry: Registry, out: Checked) -> None:
    if config.route is None:
        return  # every channel gets every alert: nothing to check
    routing = Routing.build(registry, config.route, [c.label for c in config.channels],
                            Timers(0, 0, 0))  # fmt: skip
    out.problems += [
        document.problem(path, invalid.what, invalid.fix, code=invalid.code)
        for path, invalid in route_problems(routing, registry)
    ]
    if (duty := _duty_problem(config, document)) is not None:
        out.problems.append(duty)


def _duty_problem(config: RulesConfig, document: Document) -> Problem | None:
    """The root's channels alone hear `monitoring_lost` and `channel_failing`: with one
    channel besides the log there, its own failure is told to the log only; with none,
    the service's trouble to nobody in a group, though other channels exist."""
    if config.route is None:
        return None
    kinds = {c.label: c.type for c in config.channels}
    heard = [name for name in config.route.channels or [] if kinds.get(name) != "log"]
    others = [c.label for c in config.channels if c.type != "log" and c.label not in heard]
    if len(heard) > 1 or not others:  # one to fail and one to tell of it, or no other
        return None
    if heard:
        what = Text(
            f"the root route has one channel besides the log, {heard[0]}: if it fails, "
            "channel_failing (the service's own alert, which only the root's channels get) "
            "reaches the log only",
            f"根路由除日志外只有一个通道 {heard[0]}：它发送失败时，“告警通道发送失败”"
            "（服务自身的告警，只发根路由的通道）只写进日志，没人看得到",
        )
    else:
        what = Text(
            "the root route names no channel but the log: monitoring_lost and "
            "channel_failing (the service's own alerts, which only the root's channels get) "
            "reach nobody in a group",
            "根路由只写了日志通道：“监控中断”和“告警通道发送失败”（服务自身的告警，只发根路由"
            "的通道）不会发到任何群",
        )
    return document.problem(
        ("route", "channels"),
        what,
        Text(
            f"name a second duty channel in the root's channels, e.g. {others[0]}",
            f"在根路由的 channels 里再写一个值班通道，例如 {others[0]}",
        ),
        code="root_duty",
        severity=Severity.WARNING,
    )
