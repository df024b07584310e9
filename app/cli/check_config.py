"""`waystation check-config`: check everything a service will use and list every problem.

Exit 2 on errors, 0 with warnings. Runs on an edge box too (an agent's config,
checked against the registry when there is one).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.checks import Checked, Plan, check
from app.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    RULES_CONFIG_ENV,
    Subcommands,
    connection_options,
    env_path,
    setting_origins,
    settings,
    tariff_paths,
    tariffs_option,
)
from waystation.configerror import render_problems


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "check-config",
        parents=[connection_options(top=False)],
        help="check everything a service will use: registry, settings and the files given",
    )
    p.add_argument("--agent-config", type=Path, help="an edge agent's config, against the registry")
    p.add_argument("--rules-config", type=Path, help=f"the rules config [${RULES_CONFIG_ENV}]")
    tariffs_option(p)
    return p


def run(args: argparse.Namespace) -> int:
    s = settings(args)
    rules_config = env_path(args.rules_config, RULES_CONFIG_ENV)
    tariffs = tariff_paths(args)
    plan = Plan(
        registry=Path(s.registry),
        # On an edge box, the agent's config is checked alone when no registry is there.
        registry_required=args.agent_config is None or s.given("registry"),
        agent_config=args.agent_config,
        rules_config=rules_config,
        tariffs=tariffs,
        # An agent config alone is an edge box's check: its prices are none of its business.
        allocation=args.agent_config is None or tariffs is not None or rules_config is not None,
        mqtt=s.mqtt,
        mqtt_ca=s.mqtt_ca,
        influx=s.influx,
        origins=setting_origins(args),
    )
    result = check(plan)
    if result.problems:
        print(render_problems(result.problems), file=sys.stderr)
    errors, warnings = len(result.errors), len(result.warnings)
    if errors:
        print(
            f"{errors} 处错误 error(s), {warnings} 处警告 warning(s): 修正后再启动服务 "
            "fix them before starting a service",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    noted = f"; {warnings} 处警告 warning(s)" if warnings else ""
    print(f"通过 OK: {', '.join(_summary(plan, result))}{noted}")
    return EXIT_OK


def _summary(plan: Plan, result: Checked) -> list[str]:
    parts = []
    if result.registry is not None:
        parts.append(f"{plan.registry} ({len(result.registry.stations)} stations, "
                     f"{result.registry.device_count} devices)")  # fmt: skip
    if result.agent is not None:
        parts.append(f"{plan.agent_config} ({len(result.agent.devices)} devices)")
    if plan.rules_config is not None and result.rules is not None:
        parts.append(f"{plan.rules_config} ({len(result.rules.channels)} channels)")
    if result.tariffs:
        parts.append(f"tariffs {', '.join(result.tariffs)}")
    return parts or ["settings"]
