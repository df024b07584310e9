"""`waystation`: one command, a subcommand per job (SPEC §11).

Each subcommand is a module of this package with `add_parser(sub)` and
`run(args) -> int`, listed once in COMMANDS; `common` holds what they share
(exit codes, the connection options, settings resolution, the start-up check).

A command imports the parts it runs (the agent, ingest, the rules,
dashboards) inside `run`, not at the top: the parser is built from every
command, and `waystation edge` and `check-config` must run on an edge box
that has only the `edge` extra (tests/test_edge_isolation.py, tests/test_wheel.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from app.cli import (
    broker_config,
    check_config,
    dashboards,
    demo,
    edge,
    influx_setup,
    ingest,
    report,
    rules,
    sample_registry,
    silence,
)
from app.cli.common import EXIT_CONFIG, EXIT_OK, Subcommands, connection_options
from waystation import __version__, redact
from waystation.configerror import ConfigError

__all__ = ["COMMANDS", "build_parser", "main"]


class Command(Protocol):
    """A subcommand: its parser, and what it does (the exit status)."""

    def add_parser(self, sub: Subcommands) -> argparse.ArgumentParser: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Every subcommand, in the order `waystation --help` lists them.
COMMANDS: tuple[Command, ...] = (
    demo,
    edge,
    ingest,
    broker_config,
    rules,
    silence,
    dashboards,
    influx_setup,
    report,
    check_config,
    sample_registry,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="waystation",
        description="Telemetry, outage alerts and utility cost sharing for worker rest stations.",
        parents=[connection_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"waystation {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub).set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO"),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact.install()  # no password, token or hook secret in a log line
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        print(f"waystation {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
