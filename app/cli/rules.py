"""`waystation rules`: outage rules, alerts and notifications, and the monthly allocation job."""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files
from pathlib import Path

from app.checks import Plan
from app.cli import rules_routes
from app.cli.common import (
    EXIT_CONFIG,
    EXIT_OK,
    RULES_CONFIG_ENV,
    Subcommands,
    checked,
    connection_options,
    env_path,
    health_port_option,
    mqtt_settings,
    out_dir,
    setting_origins,
    settings,
    state_option,
    state_path,
    store,
    tariff_paths,
    tariffs_option,
    wait_for_signal,
)


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "rules",
        parents=[connection_options(top=False)],
        help="outage rules, alerts and notifications; monthly allocation; "
        "`rules routes --station ID`: where a station's alerts go",
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["routes"],
        help="routes: print which channels each alert of --station reaches, and exit",
    )
    rules_routes.add_arguments(p)
    p.add_argument(
        "--rules-config",
        type=Path,
        help=f"thresholds, timing, channels (YAML) [${RULES_CONFIG_ENV}]",
    )
    p.add_argument(
        "--sample-config", action="store_true", help="print an example rules config and exit"
    )
    state_option(p, "alerts and silences")
    p.add_argument(
        "--client-id",
        help="MQTT client id (default: the MQTT user name, which is what a broker set up by "
        "`broker-config` makes of any id; without one, waystation-rules-1)",
    )
    p.add_argument(
        "--reports", type=out_dir, default=Path("reports"), help="monthly allocation exports here"
    )
    tariffs_option(p)
    p.add_argument(
        "--no-allocation",
        action="store_true",
        help="do not run the monthly allocation job (alerts only)",
    )
    health_port_option(p, 9109)
    return p


def run(args: argparse.Namespace) -> int:
    from app.monthly import serve  # server extra
    from app.scorecard import scorecard_job
    from rules.allocation.command import ReportJob
    from rules.outage.service import RulesService
    from rules.outage.statedb import StateInUse

    if args.sample_config:
        print(files("rules.outage").joinpath("sample-rules.yaml").read_text("utf-8"), end="")
        return EXIT_OK
    if args.action == "routes":
        return rules_routes.show_routes(args)
    s = settings(args)
    result = checked(
        Plan(
            registry=Path(s.registry),
            rules=True,
            rules_config=env_path(args.rules_config, RULES_CONFIG_ENV),
            tariffs=tariff_paths(args),
            allocation=not args.no_allocation,
            scheduled_billing=not args.no_allocation,
            mqtt=s.mqtt,
            mqtt_ca=s.mqtt_ca,
            influx=s.influx,
            origins=setting_origins(args),
        )
    )
    registry, config = result.registry, result.rules
    assert registry is not None  # noqa: S101 - checked raised otherwise
    assert config is not None  # noqa: S101
    influx = store(s)
    job = None
    if registry.parties and not args.no_allocation and result.tariffs is not None:
        job = ReportJob(registry, result.tariffs, influx, args.reports,
                        extras=[scorecard_job(registry, influx, args.reports, config)])  # fmt: skip
    mqtt = mqtt_settings(s)
    try:
        service = RulesService(
            mqtt, registry, config, state_path(args), store=influx,
            client_id=args.client_id or mqtt.username or "waystation-rules-1",
        )  # fmt: skip
    except StateInUse as exc:
        print(f"waystation rules: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        serve(service, wait_for_signal, job, health_port=args.health_port)
    except OSError as exc:  # the health port is taken: a second instance, or a typo
        print(f"waystation rules: --health-port {args.health_port}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK
