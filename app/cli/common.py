"""What every command shares: exit codes, the connection options, and resolving settings.

The connection settings are accepted before the verb and after it; the paths a
service and the commands working on its files must agree on (state, rules
config, tariffs) each have a flag and an environment variable (the flag wins).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from app.checks import Checked, Plan, check
from waystation.configerror import ConfigError, rendered_blocks
from waystation.durations import parse_duration
from waystation.settings import (
    SETTINGS,
    MqttSettings,
    MqttVersion,
    Origin,
    Settings,
    load_config_file,
    origins,
    resolve,
)

if TYPE_CHECKING:
    from waystation.store import InfluxStore

log = logging.getLogger("waystation")

# What `add_parser` is given: the subcommands of the `waystation` parser.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # noqa: SLF001 - argparse names no public type for it

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell's code for a run stopped by SIGINT

STATE_ENV = "WAYSTATION_STATE"
RULES_CONFIG_ENV = "WAYSTATION_RULES_CONFIG"
TARIFFS_ENV = "WAYSTATION_TARIFFS"  # files or directories, separated by ":"

# --- argument types and options --------------------------------------------------------------


def duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def out_dir(text: str) -> Path:
    """A directory to write into: refused up front when it names a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text}: 不是目录，是一个文件 | is a file, not a directory; "
            "修正 fix: 给一个目录（不存在会自动创建） | name a directory (made if missing)"
        )
    return path


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def connection_options(*, top: bool) -> argparse.ArgumentParser:
    """The connection settings. Accepted before the verb (`top`) and after it.

    After the verb they default to SUPPRESS, so a value given before the verb is kept.
    """
    unset = None if top else argparse.SUPPRESS
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group(
        "connection (flag, else environment, else --config file, else default)"
    )
    for spec in SETTINGS:
        default = f"default {spec.default}" if spec.default else "no default"
        g.add_argument(
            spec.flag, dest=spec.name, default=unset, help=f"{spec.help} [${spec.env}; {default}]"
        )
    g.add_argument(
        "--config", type=Path, default=unset, help="YAML file with any of the settings above"
    )
    p.add_argument(
        "--log-level",
        default="INFO" if top else argparse.SUPPRESS,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    return p


def health_port_option(p: argparse.ArgumentParser, default: int, serves: str = "") -> None:
    off = "default 0: off" if default == 0 else f"default {default}; 0: off"
    what = f" ({serves})" if serves else ""
    p.add_argument(
        "--health-port",
        type=int,
        default=default,
        help=f"HTTP /healthz, /readyz, /metrics{what} on 127.0.0.1 ({off})",
    )


def mqtt_version_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument(
        "--mqtt-version",
        choices=[v.value for v in MqttVersion],
        default=MqttVersion.V5.value,
        help=help_text,
    )


def state_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument(
        "--state",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"{help_text} [${STATE_ENV}; default ./rules-state.db]",
    )


def tariffs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tariffs",
        type=Path,
        action="append",
        help=f"tariff file or directory; repeatable [${TARIFFS_ENV}, ':'-separated; "
        "default: the shipped tariff, whose prices are examples]",
    )


# --- settings ------------------------------------------------------------------------------


def settings(args: argparse.Namespace) -> Settings:
    """The connection settings: flag, else environment, else `--config` file, else default."""
    flags = {spec.name: getattr(args, spec.name, None) for spec in SETTINGS}
    return resolve(flags, load_config_file(getattr(args, "config", None)))


def setting_origins(args: argparse.Namespace) -> dict[str, Origin]:
    """Where each connection setting given came from, for the start-up check's problems."""
    flags = {spec.name: getattr(args, spec.name, None) for spec in SETTINGS}
    return origins(flags, getattr(args, "config", None))


def env_path(value: Path | None, env: str, default: Path | None = None) -> Path | None:
    """A flag's path, else the environment's, else the default."""
    if value is not None:
        return value
    return Path(os.environ[env]) if os.environ.get(env) else default


def tariff_paths(args: argparse.Namespace) -> list[Path] | None:
    if getattr(args, "tariffs", None):
        return list(args.tariffs)
    from_env = os.environ.get(TARIFFS_ENV)
    return [Path(p) for p in from_env.split(os.pathsep) if p] if from_env else None


def state_path(args: argparse.Namespace) -> Path:
    path = env_path(getattr(args, "state", None), STATE_ENV, Path("rules-state.db"))
    assert path is not None  # noqa: S101 - a default is given
    return path


def mqtt_settings(settings: Settings) -> MqttSettings:
    return MqttSettings.from_url(settings.mqtt, settings.mqtt_ca)


def store(settings: Settings) -> InfluxStore:
    """The InfluxDB the settings name (server commands only: imported there)."""
    from waystation.store import InfluxStore  # server extra

    return InfluxStore(settings.influx, settings.database, token=settings.influx_token)


# --- running ---------------------------------------------------------------------------------


def checked(plan: Plan, *, said_elsewhere: frozenset[str] = frozenset()) -> Checked:
    """The start-up check every service runs: warnings logged, errors stop it (exit 2).

    `said_elsewhere`: codes of warnings the command prints in its own words.
    """
    result = check(plan)
    if result.errors:
        raise ConfigError(result.problems)
    for block in rendered_blocks(p for p in result.warnings if p.code not in said_elsewhere):
        log.warning("%s", block)
    return result


def wait_for_signal(until: Callable[[], bool] = lambda: False) -> None:
    """Block until SIGINT/SIGTERM (or `until()` is true)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if until():
            return
