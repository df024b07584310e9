"""Everything a service will use, checked together: `check-config`, and every service at start-up.

Each file is validated on its own by its loader; this package adds what only
shows across files: an agent's devices against the registry (`agent`), the
tariffs a registry names (`tariffs`), a station's gateway and meters
(`registry`), the rules' routing tree against the registry (`routes`), the
URLs each service calls (`connection`), prices that are only examples.
Every problem is collected (errors stop a service, warnings do not), so one
run lists all of them.

It imports the agent's, the rules' and the tariffs' config models, which need
no server package: the check runs on an edge box too.
"""

from __future__ import annotations

from app.checks.agent import check_agent
from app.checks.connection import check_connection
from app.checks.plan import Checked, Plan
from app.checks.registry import check_gateways_and_meters, check_registry, check_station
from app.checks.routes import check_routes
from app.checks.tariffs import check_tariffs
from rules.outage.config import RulesConfig, read_rules_config
from waystation.configerror import ConfigError

__all__ = ["Checked", "Plan", "check"]


def check(plan: Plan) -> Checked:
    out = Checked()
    check_connection(plan, out)
    check_registry(plan, out)
    if plan.rules or plan.rules_config is not None:
        _rules(plan, out)
    if plan.agent_config is not None:
        check_agent(plan, out)
    if plan.station is not None and out.registry is not None:
        check_station(plan.station, out)
    if out.registry is not None and out.rules is not None and out.rules_document is not None:
        check_routes(out.rules, out.rules_document, out.registry, out)
    if out.registry is not None:
        check_gateways_and_meters(out.registry, out)
        if plan.tariffs is not None or (plan.allocation and out.registry.parties):
            check_tariffs(plan, out)
    return out


def _rules(plan: Plan, out: Checked) -> None:
    """The rules config, or the defaults when none is given."""
    if plan.rules_config is None:
        out.rules = RulesConfig()
        return
    try:
        out.rules, out.rules_document = read_rules_config(plan.rules_config)
    except ConfigError as exc:
        out.collect(exc)
