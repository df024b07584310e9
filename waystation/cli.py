"""`waystation`: one command, a subcommand per job (SPEC §11).

Server-side modules are imported inside the subcommand that needs them, so
`waystation edge` and `waystation check-config` run on an edge install.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from waystation import __version__, redact
from waystation.checks import Checked, Plan, check
from waystation.configerror import ConfigError, Text, render_problems
from waystation.health import HealthServer
from waystation.registry import parse_duration
from waystation.settings import (
    SETTINGS,
    MqttSettings,
    MqttVersion,
    SettingsError,
    load_config_file,
    resolve,
)

if TYPE_CHECKING:
    from edge.agent import EdgeAgent
    from edge.config import AgentConfig
    from waystation.store import InfluxStore

__all__ = ["main"]

log = logging.getLogger("waystation")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130  # the shell's code for a run stopped by SIGINT

# Paths a service and the commands that work on its files must agree on; each has a flag
# and this environment variable (the flag wins).
STATE_ENV = "WAYSTATION_STATE"
RULES_CONFIG_ENV = "WAYSTATION_RULES_CONFIG"
TARIFFS_ENV = "WAYSTATION_TARIFFS"  # files or directories, separated by ":"


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _common(*, top: bool) -> argparse.ArgumentParser:
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


def _state_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument(
        "--state",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"{help_text} [${STATE_ENV}; default ./rules-state.db]",
    )


def _tariffs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tariffs",
        type=Path,
        action="append",
        help=f"tariff file or directory; repeatable [${TARIFFS_ENV}, ':'-separated; "
        "default: the shipped tariff, whose prices are examples]",
    )


def _add_rules_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "rules", parents=[common], help="outage rules, alerts and notifications; monthly allocation"
    )
    p.add_argument(
        "--rules-config",
        type=Path,
        help=f"thresholds, timing, channels (YAML) [${RULES_CONFIG_ENV}]",
    )
    p.add_argument(
        "--sample-config", action="store_true", help="print an example rules config and exit"
    )
    _state_option(p, "alerts and silences")
    p.add_argument(
        "--client-id",
        help="MQTT client id (default: the MQTT user name, which is what a broker set up by "
        "`broker-config` makes of any id; without one, waystation-rules-1)",
    )
    p.add_argument(
        "--reports", type=Path, default=Path("reports"), help="monthly allocation exports here"
    )
    _tariffs_option(p)
    p.add_argument(
        "--no-allocation",
        action="store_true",
        help="do not run the monthly allocation job (alerts only)",
    )
    p.add_argument(
        "--health-port",
        type=int,
        default=9109,
        help="HTTP /healthz, /readyz, /metrics on 127.0.0.1 (default 9109; 0: off)",
    )
    p.set_defaults(func=_cmd_rules)

    # `silence --state X add` and `silence add --state X` both work.
    state = argparse.ArgumentParser(add_help=False)
    _state_option(state, "the rules service's state file")
    state.add_argument(
        "--create-state", action="store_true", default=argparse.SUPPRESS,
        help="start a new state file if there is none (default: refuse)",
    )  # fmt: skip
    p = sub.add_parser(
        "silence",
        parents=[common, state],
        help="silence a station's alerts for a while (maintenance)",
    )
    silence = p.add_subparsers(dest="action", required=True)
    add = silence.add_parser("add", parents=[common, state], help="silence a station until a time")
    add.add_argument("--station", required=True, help="a station id of the registry")
    add.add_argument(
        "--until", required=True, help="a duration from now (2h) or a time (2026-11-25T08:00+08:00)"
    )
    add.add_argument("--from", dest="start", help="start later, at this time (default now)")
    add.add_argument("--reason", default="maintenance")
    silence.add_parser("list", parents=[common, state], help="silences not yet over")
    remove = silence.add_parser("remove", parents=[common, state], help="end a silence")
    remove.add_argument("id", type=int)
    p.set_defaults(func=_cmd_silence)


def _add_dashboards_parser(sub: Any) -> None:
    p = sub.add_parser("dashboards", help="Grafana dashboards: write the JSON, or push to Grafana")
    action = p.add_subparsers(dest="action", required=True)
    build = action.add_parser("build", help="write the dashboards' JSON files")
    build.add_argument(
        "--out",
        type=Path,
        default=Path("dashboards/json"),
        help="directory (default ./dashboards/json, under the working directory)",
    )
    push = action.add_parser("push", help="create or update the dashboards in a running Grafana")
    push.add_argument(
        "--grafana",
        default=os.environ.get("WAYSTATION_GRAFANA", "http://127.0.0.1:3000"),
        help="Grafana's URL [$WAYSTATION_GRAFANA; default http://127.0.0.1:3000]",
    )
    push.add_argument(
        "--grafana-token",
        default=os.environ.get("WAYSTATION_GRAFANA_TOKEN"),
        help="service-account token, or user:password [$WAYSTATION_GRAFANA_TOKEN]",
    )
    push.add_argument("--folder", default="Waystation", help="folder (created if missing)")
    push.add_argument("--datasource", help="uid of the InfluxDB data source to select")
    push.add_argument("--overwrite", action="store_true", help="replace dashboards that exist")
    push.add_argument(
        "--dashboard", action="append", dest="names", help="only this one; repeatable"
    )
    p.set_defaults(func=_cmd_dashboards)


def _add_report_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "report",
        parents=[common],
        help="monthly utility allocation by party: CSV + XLSX, and InfluxDB `allocation`",
    )
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--month", help="the month to allocate, like 2026-10")
    when.add_argument(
        "--schedule",
        action="store_true",
        help="keep running and allocate the month before on the 1st of each month at 02:00",
    )
    p.add_argument(
        "--out", type=Path, default=Path("reports"), help="directory (default ./reports)"
    )
    _tariffs_option(p)
    p.add_argument(
        "--allow-example-prices",
        action="store_true",
        help="bill with a tariff marked as example without the warning and the exports' mark "
        "(never for --schedule)",
    )
    p.add_argument(
        "--station",
        action="append",
        dest="stations",
        help="only this station; repeatable (the files' names then carry the stations' ids)",
    )
    p.add_argument(
        "--no-influx", action="store_true", help="do not write the `allocation` measurement"
    )
    p.set_defaults(func=_cmd_report)


def _add_edge_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("edge", parents=[common], help="run the edge agent of one station")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--agent-config", type=Path, help="the agent's devices and drivers (YAML)")
    which.add_argument("--station", help="simulate this registry station's devices")
    which.add_argument("--sample-config", action="store_true", help="print an example agent config")
    p.add_argument("--interval", type=_duration, help="with --station: every device's interval")
    p.add_argument("--outbox", type=Path, help="outbox file (overrides the agent config's)")
    p.add_argument(
        "--outbox-max-readings", type=int, help="readings the outbox keeps (overrides the config's)"
    )
    p.add_argument(
        "--outbox-max-age", type=_duration, help="age the outbox keeps (overrides the config's)"
    )
    p.add_argument(
        "--backfill",
        type=_duration,
        help="with --station: first simulate this much history (e.g. 30d) and publish it",
    )
    p.add_argument(
        "--backfill-step",
        type=_duration,
        default=timedelta(minutes=1),
        help="interval of the backfilled readings (default 1m)",
    )
    p.add_argument(
        "--health-port",
        type=int,
        default=0,
        help="HTTP /healthz, /readyz, /metrics (connection, outbox) on 127.0.0.1 (default 0: off)",
    )
    p.add_argument(
        "--mqtt-version",
        choices=[v.value for v in MqttVersion],
        default=MqttVersion.V5.value,
        help="5 (default: the broker says when it refuses a reading, which then stays in the "
        "outbox) or 3.1.1 (for old brokers: a refused reading looks delivered and is deleted)",
    )
    p.set_defaults(func=_cmd_edge)


def _add_demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="a simulated district's whole story through the real pipeline")
    p.add_argument("--log-level", default="ERROR", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument(
        "--duration",
        type=_duration,
        default=timedelta(seconds=10),
        help="how long to stay live after the faults (default 10s)",
    )
    p.add_argument(
        "--interval",
        type=_duration,
        help="reading interval of every simulated device live (default 1s)",
    )
    p.add_argument(
        "--short", action="store_true", help="coarser history and shorter waits (the tests' mode)"
    )
    p.add_argument(
        "--workdir", type=Path, help="keep servers' data here (default: a temp dir, removed)"
    )
    p.set_defaults(func=_cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    common = _common(top=False)
    parser = argparse.ArgumentParser(
        prog="waystation",
        description="Telemetry, outage alerts and utility cost sharing for worker rest stations.",
        parents=[_common(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"waystation {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_demo_parser(sub)
    _add_edge_parser(sub, common)

    p = sub.add_parser("ingest", parents=[common], help="run an ingest worker (MQTT → InfluxDB)")
    p.add_argument(
        "--client-id",
        help="stable MQTT client id; one per worker (default: the MQTT user name, which is what "
        "a broker set up by `broker-config` makes of any id; without one, waystation-ingest-1)",
    )
    p.add_argument(
        "--group",
        help="join shared-subscription group G to split the load with other workers; "
        "without it, one worker with a plain subscription (survives a Mosquitto restart, "
        "which shared subscriptions do not)",
    )
    p.add_argument(
        "--mqtt-version",
        choices=[v.value for v in MqttVersion],
        default=MqttVersion.V5.value,
        help="5 (default: sets session expiry and receive window) or 3.1.1 (about 50%% faster; "
        "needs the broker's max_inflight_messages sized, as the shipped Mosquitto config does)",
    )
    p.add_argument(
        "--topic",
        default="stations/+/+/+",
        help="topic filter to subscribe to (default stations/+/+/+)",
    )
    p.add_argument("--deadletter-file", type=Path, help="append dead letters here (JSON lines)")
    p.add_argument(
        "--health-port",
        type=int,
        default=9108,
        help="HTTP /healthz, /readyz, /metrics on 127.0.0.1 (default 9108; 0: off)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        help="most messages written in one batch (default 5000)",
    )
    p.add_argument(
        "--batch-wait",
        type=_duration,
        default=timedelta(milliseconds=100),
        help="longest wait to fill a batch (default 100ms)",
    )
    p.add_argument(
        "--receive-maximum",
        type=int,
        default=1000,
        help="unacknowledged messages the broker may send at once (default 1000)",
    )
    p.add_argument(
        "--max-age",
        type=_duration,
        default=timedelta(days=400),
        help="dead-letter readings older than this (default 400d)",
    )
    p.add_argument(
        "--max-ahead",
        type=_duration,
        default=timedelta(minutes=10),
        help="dead-letter readings further in the future (default 10m)",
    )
    p.set_defaults(func=_cmd_ingest)

    p = sub.add_parser(
        "broker-config",
        parents=[common],
        help="Mosquitto password and ACL files from the registry",
    )
    p.add_argument("--out", type=Path, default=Path("broker"), help="directory (default ./broker)")
    p.add_argument(
        "--broker-user",
        default="mosquitto",
        help="the user Mosquitto runs as, who must read passwd and acl: a name or a uid "
        "(1883 in the eclipse-mosquitto image); default mosquitto",
    )
    p.add_argument(
        "--ingest-workers",
        type=_positive,
        default=1,
        help="accounts waystation-ingest-1..N, one per ingest worker (default 1)",
    )
    p.add_argument(
        "--rules-workers",
        type=_positive,
        default=1,
        help="accounts waystation-rules-1..N, one per rules service (default 1)",
    )
    p.set_defaults(func=_cmd_broker_config)

    _add_rules_parsers(sub, common)
    _add_dashboards_parser(sub)

    p = sub.add_parser(
        "influx-setup",
        parents=[common],
        help="prepare InfluxDB 2.x: bucket, retention, DBRP mapping, least-privilege tokens",
    )
    p.add_argument("--org", default="waystation")
    p.add_argument("--bucket", default="waystation")
    p.add_argument("--retention", type=_duration, default=timedelta(days=800))
    p.add_argument("--out", type=Path, default=Path("influx-tokens"), help="token files here")
    p.add_argument("--file-mode", default="600", help="octal mode of the token files (default 600)")
    p.set_defaults(func=_cmd_influx_setup)

    _add_report_parser(sub, common)

    p = sub.add_parser(
        "check-config",
        parents=[common],
        help="check everything a service will use: registry, settings and the files given",
    )
    p.add_argument("--agent-config", type=Path, help="an edge agent's config, against the registry")
    p.add_argument("--rules-config", type=Path, help=f"the rules config [${RULES_CONFIG_ENV}]")
    _tariffs_option(p)
    p.set_defaults(func=_cmd_check_config)

    p = sub.add_parser("sample-registry", help="print an example stations.yaml")
    p.set_defaults(func=_cmd_sample_registry)
    return parser


def _settings(args: argparse.Namespace) -> dict[str, str | None]:
    flags = {spec.name: getattr(args, spec.name, None) for spec in SETTINGS}
    return resolve(flags, load_config_file(getattr(args, "config", None)))


def _registry_given(args: argparse.Namespace) -> bool:
    """Named by flag, environment or config file (not just the default ./stations.yaml)."""
    config = load_config_file(getattr(args, "config", None))
    flag = getattr(args, "registry", None)
    return bool(flag or os.environ.get("WAYSTATION_REGISTRY") or config.get("registry"))


def _required(settings: dict[str, str | None], name: str) -> str:
    value = settings[name]
    if value is None:
        spec = next(spec for spec in SETTINGS if spec.name == name)
        raise SettingsError(
            Text(
                f"{spec.flag} is not set: give it, or set {spec.env}",
                f"没有设置 {spec.flag}：请给出它，或设置环境变量 {spec.env}",
            )
        )
    return value


def _env_path(value: Path | None, env: str, default: Path | None = None) -> Path | None:
    """A flag's path, else the environment's, else the default."""
    if value is not None:
        return value
    return Path(os.environ[env]) if os.environ.get(env) else default


def _tariff_paths(args: argparse.Namespace) -> list[Path] | None:
    if getattr(args, "tariffs", None):
        return list(args.tariffs)
    from_env = os.environ.get(TARIFFS_ENV)
    return [Path(p) for p in from_env.split(os.pathsep) if p] if from_env else None


def _state_path(args: argparse.Namespace) -> Path:
    path = _env_path(getattr(args, "state", None), STATE_ENV, Path("rules-state.db"))
    assert path is not None  # noqa: S101 - a default is given
    return path


def _mqtt_settings(settings: dict[str, str | None]) -> MqttSettings:
    return MqttSettings.from_url(_required(settings, "mqtt"), settings["mqtt_ca"])


def _store(settings: dict[str, str | None]) -> InfluxStore:
    """The InfluxDB the settings name (server commands only: imported there)."""
    from waystation.store import InfluxStore  # noqa: PLC0415 - server extra

    return InfluxStore(
        _required(settings, "influx"), _required(settings, "database"),
        token=settings["influx_token"],
    )  # fmt: skip


def _checked(plan: Plan, *, said_elsewhere: frozenset[str] = frozenset()) -> Checked:
    """The start-up check every service runs: warnings logged, errors stop it (exit 2).

    `said_elsewhere`: codes of warnings the command prints in its own words.
    """
    result = check(plan)
    if result.errors:
        raise ConfigError(result.problems)
    for problem in result.warnings:
        if problem.code not in said_elsewhere:
            log.warning("%s", problem.render())
    return result


def _wait_for_signal(until: Callable[[], bool] = lambda: False) -> None:
    """Block until SIGINT/SIGTERM (or `until()` is true)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if until():
            return


def _cmd_check_config(args: argparse.Namespace) -> int:
    s = _settings(args)
    plan = Plan(
        registry=Path(_required(s, "registry")),
        # On an edge box, the agent's config is checked alone when no registry is there.
        registry_required=args.agent_config is None or _registry_given(args),
        agent_config=args.agent_config,
        rules_config=_env_path(args.rules_config, RULES_CONFIG_ENV),
        tariffs=_tariff_paths(args),
        allocation=True,
        mqtt=s["mqtt"],
        mqtt_ca=s["mqtt_ca"],
        influx=s["influx"],
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
    print(f"通过 OK: {', '.join(_checked_summary(plan, result))}{noted}")
    return EXIT_OK


def _checked_summary(plan: Plan, result: Checked) -> list[str]:
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


def _cmd_broker_config(args: argparse.Namespace) -> int:
    from waystation.brokerconfig import hand_to_broker, write_broker_config  # noqa: PLC0415

    s = _settings(args)
    registry = _checked(Plan(registry=Path(_required(s, "registry")))).registry
    assert registry is not None  # noqa: S101 - _checked raised otherwise
    files = write_broker_config(
        registry, args.out, ingest_workers=args.ingest_workers, rules_workers=args.rules_workers
    )
    print(f"{files.passwd}, {files.acl}: {registry.device_count} devices and the service accounts")
    print(f"{files.credentials}: passwords (secret), {len(files.new_accounts)} new")
    if files.removed_accounts:
        print(f"accounts no longer in the registry: {', '.join(files.removed_accounts)}")
    print(hand_to_broker(files, args.broker_user))
    print(
        f"{files.mosquitto_conf}: for Mosquitto's include_dir (password_file, acl_file, "
        "allow_anonymous false, use_username_as_clientid true: each account's user name "
        "is its client id)"
    )
    return EXIT_OK


def _cmd_sample_registry(_args: argparse.Namespace) -> int:
    print(
        files("waystation").joinpath("data/demo-stations.yaml").read_text(encoding="utf-8"), end=""
    )
    return EXIT_OK


def _agent_config(args: argparse.Namespace, result: Checked) -> AgentConfig:
    from edge.config import AgentConfig, OutboxConfig  # noqa: PLC0415 - edge extra

    if result.agent is not None:
        config = result.agent
    else:
        assert result.registry is not None  # noqa: S101 - checked
        outbox_path = Path("edge-outbox") / f"{args.station}.db"
        config = AgentConfig.from_registry(
            result.registry, args.station, outbox=outbox_path, interval=args.interval
        )
    overrides = {
        "path": args.outbox,
        "max_readings": args.outbox_max_readings,
        "max_age": args.outbox_max_age,
    }
    chosen = {k: v for k, v in overrides.items() if v is not None}
    if chosen:
        outbox = OutboxConfig(**(config.outbox.model_dump() | chosen))
        config = config.model_copy(update={"outbox": outbox})
    return config


def _cmd_edge(args: argparse.Namespace) -> int:
    # Edge-only imports: this command runs on a box with the `edge` extra.
    from edge.agent import BackfillInterrupted, BackfillTooLarge, EdgeAgent  # noqa: PLC0415
    from edge.config import SAMPLE  # noqa: PLC0415

    if args.sample_config:
        print(SAMPLE, end="")
        return EXIT_OK
    s = _settings(args)
    result = _checked(
        Plan(
            registry=Path(_required(s, "registry")),
            registry_required=args.agent_config is None or _registry_given(args),
            agent_config=args.agent_config,
            station=args.station,
            mqtt=s["mqtt"],
            mqtt_ca=s["mqtt_ca"],
        )
    )
    config = _agent_config(args, result)
    try:
        agent = EdgeAgent(
            config, _mqtt_settings(s), backfill=args.backfill, backfill_step=args.backfill_step,
            progress=_backfill_progress(args.backfill),
            mqtt_version=MqttVersion(args.mqtt_version),
        )  # fmt: skip
    except (BackfillTooLarge, ValueError) as exc:
        print(f"waystation edge: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        _start_agent(agent)
    except BackfillInterrupted as exc:
        print(f"waystation edge: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    log.info(
        "agent %s of %s running; outbox %s", config.agent_device, config.station,
        config.outbox.path,
    )  # fmt: skip
    health = HealthServer(agent, args.health_port, name="edge-health") if args.health_port else None
    try:
        if health is not None:
            health.start()
            log.info("health and metrics on http://127.0.0.1:%d/metrics", health.port)
        _wait_for_signal()
    finally:
        if health is not None:
            health.stop()
        agent.stop()
    log.info("agent stopped: %s; outbox depth %d", agent.stats, agent.outbox.depth)
    return EXIT_OK


def _start_agent(agent: EdgeAgent) -> None:
    """Start, with Ctrl-C and SIGTERM stopping a backfill cleanly (it says what it kept)."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: agent.interrupt_backfill())
    try:
        agent.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _backfill_progress(span: timedelta | None) -> Callable[[int, int], None] | None:
    if span is None:
        return None
    shown = [-1]

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if tenth > shown[0]:
            shown[0] = tenth
            log.info("backfill %d%% (%d of %d steps)", tenth * 10, done, total)

    return progress


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.decode import TimeWindow  # noqa: PLC0415 - server extra
    from ingest.worker import IngestConfig, IngestWorker  # noqa: PLC0415
    from waystation.store import QueryError, StoreUnavailable  # noqa: PLC0415

    s = _settings(args)
    registry = _checked(
        Plan(registry=Path(_required(s, "registry")), mqtt=s["mqtt"], mqtt_ca=s["mqtt_ca"],
             influx=s["influx"])
    ).registry  # fmt: skip
    assert registry is not None  # noqa: S101 - _checked raised otherwise
    mqtt = _mqtt_settings(s)
    store = _store(s)
    try:
        store.create_database()  # InfluxDB 1.x; on 2.x the DBRP mapping exists already
    except (QueryError, StoreUnavailable) as exc:
        log.info("could not create database %s (%s); writing to it anyway", store.database, exc)
    try:
        config = IngestConfig(
            client_id=args.client_id or mqtt.username or "waystation-ingest-1",
            group=args.group,
            topic_filter=args.topic,
            mqtt_version=MqttVersion(args.mqtt_version),
            deadletter_path=args.deadletter_file,
            batch_max_messages=args.batch_size,
            batch_max_wait_s=args.batch_wait.total_seconds(),
            receive_maximum=args.receive_maximum,
            window=TimeWindow(max_age=args.max_age, max_ahead=args.max_ahead),
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    worker = IngestWorker(mqtt, store, registry, config)
    health = HealthServer(worker, args.health_port) if args.health_port else None
    with worker:
        if health is not None:
            health.start()
            log.info("health and metrics on http://127.0.0.1:%d/metrics", health.port)
        _wait_for_signal(until=lambda: not worker.running)
        if health is not None:
            health.stop()
    stats = worker.stats
    log.info(
        "ingest stopped: %d received, %d written, %d acked; dead letters %s",
        stats.received,
        stats.messages_written,
        stats.acked,
        dict(worker.deadletters.counts),
    )
    return EXIT_FAILURE if worker.fatal else EXIT_OK


def _cmd_rules(args: argparse.Namespace) -> int:
    from rules.allocation.command import ReportJob  # noqa: PLC0415 - server extra
    from rules.outage.command import serve  # noqa: PLC0415
    from rules.outage.service import RulesService  # noqa: PLC0415

    if args.sample_config:
        print(files("rules.outage").joinpath("sample-rules.yaml").read_text("utf-8"), end="")
        return EXIT_OK
    s = _settings(args)
    result = _checked(
        Plan(
            registry=Path(_required(s, "registry")),
            rules=True,
            rules_config=_env_path(args.rules_config, RULES_CONFIG_ENV),
            tariffs=_tariff_paths(args),
            allocation=not args.no_allocation,
            scheduled_billing=not args.no_allocation,
            mqtt=s["mqtt"],
            mqtt_ca=s["mqtt_ca"],
            influx=s["influx"],
        )
    )
    registry, config = result.registry, result.rules
    assert registry is not None  # noqa: S101 - _checked raised otherwise
    assert config is not None  # noqa: S101
    store = _store(s)
    job = None
    if registry.parties and not args.no_allocation and result.tariffs is not None:
        job = ReportJob(registry, result.tariffs, store, args.reports)
    mqtt = _mqtt_settings(s)
    service = RulesService(
        mqtt, registry, config, _state_path(args), store=store,
        client_id=args.client_id or mqtt.username or "waystation-rules-1",
    )  # fmt: skip
    try:
        serve(service, _wait_for_signal, job, health_port=args.health_port)
    except OSError as exc:  # the health port is taken: a second instance, or a typo
        print(f"waystation rules: --health-port {args.health_port}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _cmd_silence(args: argparse.Namespace) -> int:
    from rules.outage.command import add_silence, list_silences, remove_silence  # noqa: PLC0415

    registry = _checked(Plan(registry=Path(_required(_settings(args), "registry")))).registry
    assert registry is not None  # noqa: S101 - _checked raised otherwise
    state = _state_path(args)
    try:
        if args.action == "add":
            print(add_silence(state, args.station, args.until, registry=registry,
                              start=args.start, reason=args.reason,
                              create=getattr(args, "create_state", False)))  # fmt: skip
        elif args.action == "remove":
            found = remove_silence(state, args.id)
            print(f"silence {args.id} {'removed 已解除' if found else 'not found 不存在'}")
            return EXIT_OK if found else EXIT_FAILURE
        else:
            for line in list_silences(state, registry):
                print(line)
    except ValueError as exc:
        print(f"waystation silence: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _cmd_dashboards(args: argparse.Namespace) -> int:
    from dashboards.boards import DASHBOARDS  # noqa: PLC0415 - server extra
    from dashboards.generate import generate  # noqa: PLC0415
    from dashboards.push import PushError, push  # noqa: PLC0415

    if args.action == "build":
        for path in generate(args.out):
            print(path)
        return EXIT_OK
    unknown = sorted(set(args.names or ()) - set(DASHBOARDS))
    if unknown:
        print(f"waystation dashboards: no dashboard {', '.join(unknown)} "
              f"(have {', '.join(DASHBOARDS)})", file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    token = args.grafana_token
    credential: str | tuple[str, str] | None = (
        tuple(token.split(":", 1)) if token and ":" in token else token
    )
    redact.register_secret(token.partition(":")[2] if token and ":" in token else token)
    try:
        urls = push(args.grafana, credential, folder=args.folder, datasource_uid=args.datasource,
                    overwrite=args.overwrite, names=args.names)  # fmt: skip
    except PushError as exc:
        print(redact.redact(f"waystation dashboards push: {exc}"), file=sys.stderr)
        return EXIT_FAILURE
    for url in urls:
        print(url)
    return EXIT_OK


def _cmd_influx_setup(args: argparse.Namespace) -> int:
    from waystation.influxsetup import InfluxSetup, SetupError, setup_influxdb  # noqa: PLC0415

    s = _settings(args)
    token = _required(s, "influx_token")  # the admin (operator) token
    setup = InfluxSetup(_required(s, "influx"), token, args.org, args.bucket,
                        _required(s, "database"), args.retention, args.out,
                        int(args.file_mode, 8))  # fmt: skip
    try:
        for line in setup_influxdb(setup):
            print(line)
    except (SetupError, OSError) as exc:
        print(f"waystation influx-setup: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    # Server extra: rich, openpyxl, APScheduler.
    from rich.console import Console  # noqa: PLC0415

    from rules.allocation.command import ReportJob, print_summary, run_scheduled  # noqa: PLC0415
    from rules.allocation.report import (  # noqa: PLC0415
        AllocationError,
        NoReadings,
        example_tariffs,
        parse_month,
    )
    from waystation.store import StoreError  # noqa: PLC0415

    s = _settings(args)
    result = _checked(
        Plan(
            registry=Path(_required(s, "registry")),
            tariffs=_tariff_paths(args),
            allocation=True,
            scheduled_billing=args.schedule,
            influx=s["influx"],
        ),
        said_elsewhere=frozenset({"example_prices"}),
    )
    registry, tariffs = result.registry, result.tariffs
    assert registry is not None  # noqa: S101 - _checked raised otherwise
    if tariffs is None:  # a registry without parties: run_report says what to add
        tariffs = {}
    console = Console(stderr=True)
    job = ReportJob(registry, tariffs, _store(s), args.out, args.stations, not args.no_influx,
                    console, allow_example_prices=args.allow_example_prices)  # fmt: skip
    examples = (
        [] if args.allow_example_prices else example_tariffs(registry, tariffs, args.stations)
    )
    try:
        if args.schedule:
            run_scheduled(job, ZoneInfo(registry.timezone), _wait_for_signal)
            return EXIT_OK
        month = parse_month(args.month)
        if examples:
            _warn_example_prices(examples)
        report, csv_path, xlsx_path = job.run(month)
    except NoReadings as exc:
        print(f"waystation report: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except AllocationError as exc:
        print(f"waystation report: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"waystation report: InfluxDB: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print_summary(Console(), report, registry)
    print(f"written: {csv_path} and {xlsx_path}")
    if examples:
        _warn_example_prices(examples)
    return EXIT_OK


def _warn_example_prices(tariffs: list[str]) -> None:
    names = ", ".join(tariffs)
    print(
        f"警告 WARNING: 电价 {names} 是示例价格，本报表不是正式账单；导出文件每行都标注“示例价格”，"
        "也不写入 InfluxDB。\n"
        f"  tariff {names} holds EXAMPLE prices: this is not a bill. Every exported row says "
        "so and nothing goes to InfluxDB.\n"
        "  修正 fix: --tariffs FILE with the prices on your utility bills (copy the shipped "
        "file, remove `example: true`), or --allow-example-prices to accept them",
        file=sys.stderr,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from waystation.demo import run_demo  # noqa: PLC0415 - server extra

    run_demo(duration=args.duration, interval=args.interval, workdir=args.workdir, short=args.short)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO"),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact.install()  # no password, token or hook secret in a log line
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"waystation {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
