"""The rules' routing tree against the registry: unknown parties, stations; unreachable routes."""

from __future__ import annotations

from app.checks.plan import Checked
from rules.outage.config import RulesConfig
from rules.outage.routecheck import route_problems
from rules.outage.routing import Routing, Timers
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
