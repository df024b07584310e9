"""What deploy/ ships agrees with the code it runs."""

from __future__ import annotations

import configparser
from pathlib import Path

from edge.config import DEFAULT_OUTBOX
from waystation.cli import build_parser

DEPLOY = Path(__file__).parents[1] / "deploy"


def test_edge_unit_matches_the_agent() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / "waystation-edge.service")
    service = unit["Service"]
    # The agent's default outbox sits in the unit's state directory.
    assert DEFAULT_OUTBOX.parent == Path("/var/lib") / service["StateDirectory"]
    assert service["Restart"] == "always"
    assert service["User"] != "root"
    # The command line the unit runs is one the CLI accepts.
    argv = service["ExecStart"].split()
    assert argv[0].endswith("/waystation")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "edge"
    assert str(args.agent_config).startswith("/etc/" + service["ConfigurationDirectory"])


def test_mosquitto_config_includes_the_tested_limits() -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    assert "include_dir /mosquitto/config/conf.d" in conf
    limits = (DEPLOY / "mosquitto" / "conf.d" / "waystation-limits.conf").resolve()
    assert limits.name == "mosquitto-limits.conf"  # the very file the harness loads
    assert "persistence true" in limits.read_text()
