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

from waystation import __version__
from waystation.registry import RegistryError, load_registry, parse_duration
from waystation.settings import (
    SETTINGS,
    MqttSettings,
    MqttVersion,
    SettingsError,
    load_config_file,
    resolve,
)

if TYPE_CHECKING:
    from waystation.store import InfluxStore

__all__ = ["main"]

log = logging.getLogger("waystation")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group(
        "connection (flag, else environment, else --config file, else default)"
    )
    for spec in SETTINGS:
        default = f"default {spec.default}" if spec.default else "no default"
        g.add_argument(
            spec.flag, dest=spec.name, default=None, help=f"{spec.help} [${spec.env}; {default}]"
        )
    g.add_argument("--config", type=Path, help="YAML file with any of the settings above")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def _add_rules_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "rules", parents=[common], help="outage rules, alerts and notifications; monthly allocation"
    )
    p.add_argument("--rules-config", type=Path, help="thresholds, timing, channels (YAML)")
    p.add_argument(
        "--sample-config", action="store_true", help="print an example rules config and exit"
    )
    p.add_argument(
        "--state",
        type=Path,
        default=Path("rules-state.db"),
        help="alerts and silences (default ./rules-state.db)",
    )
    p.add_argument("--client-id", default="waystation-rules", help="MQTT client id")
    p.add_argument(
        "--reports", type=Path, default=Path("reports"), help="monthly allocation exports here"
    )
    p.set_defaults(func=_cmd_rules)

    p = sub.add_parser("silence", help="silence a station's alerts for a while (maintenance)")
    p.add_argument("--state", type=Path, default=Path("rules-state.db"), help="the rules' state")
    silence = p.add_subparsers(dest="action", required=True)
    add = silence.add_parser("add", help="silence a station until a time")
    add.add_argument("--station", required=True)
    add.add_argument(
        "--until", required=True, help="a duration from now (2h) or a time (2026-11-25T08:00+08:00)"
    )
    add.add_argument("--from", dest="start", help="start later, at this time (default now)")
    add.add_argument("--reason", default="maintenance")
    add.add_argument("--registry", help="check the station against this registry")
    silence.add_parser("list", help="silences not yet over")
    remove = silence.add_parser("remove", help="end a silence")
    remove.add_argument("id", type=int)
    p.set_defaults(func=_cmd_silence)


def _add_dashboards_parser(sub: Any) -> None:
    p = sub.add_parser("dashboards", help="Grafana dashboards: write the JSON, or push to Grafana")
    action = p.add_subparsers(dest="action", required=True)
    build = action.add_parser("build", help="write the dashboards' JSON (default dashboards/json)")
    build.add_argument("--out", type=Path, help="directory")
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
    p.add_argument(
        "--tariffs",
        type=Path,
        action="append",
        help="tariff file or directory; repeatable (default: the shipped example tariff)",
    )
    p.add_argument(
        "--station", action="append", dest="stations", help="only this station; repeatable"
    )
    p.add_argument(
        "--no-influx", action="store_true", help="do not write the `allocation` measurement"
    )
    p.set_defaults(func=_cmd_report)


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
    common = _common()
    parser = argparse.ArgumentParser(
        prog="waystation",
        description="Telemetry, outage alerts and utility cost sharing for worker rest stations.",
    )
    parser.add_argument("--version", action="version", version=f"waystation {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_demo_parser(sub)

    p = sub.add_parser("edge", parents=[common], help="run the edge agent of one station")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--agent-config", type=Path, help="the agent's devices and drivers (YAML)")
    which.add_argument("--station", help="simulate this registry station's devices")
    which.add_argument("--sample-config", action="store_true", help="print an example agent config")
    p.add_argument("--interval", type=_duration, help="with --station: every device's interval")
    p.add_argument("--outbox", type=Path, help="outbox file (overrides the agent config's)")
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
    p.set_defaults(func=_cmd_edge)

    p = sub.add_parser("ingest", parents=[common], help="run an ingest worker (MQTT → InfluxDB)")
    p.add_argument(
        "--client-id",
        default="waystation-ingest-1",
        help="stable MQTT client id; one per worker (default waystation-ingest-1)",
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

    p = sub.add_parser("check-config", parents=[common], help="validate the registry and settings")
    p.set_defaults(func=_cmd_check_config)

    p = sub.add_parser("sample-registry", help="print an example stations.yaml")
    p.set_defaults(func=_cmd_sample_registry)
    return parser


def _settings(args: argparse.Namespace) -> dict[str, str | None]:
    flags = {spec.name: getattr(args, spec.name, None) for spec in SETTINGS}
    return resolve(flags, load_config_file(getattr(args, "config", None)))


def _required(settings: dict[str, str | None], name: str) -> str:
    value = settings[name]
    if value is None:
        raise SettingsError(f"{name} is not set")
    return value


def _mqtt_settings(settings: dict[str, str | None]) -> MqttSettings:
    return MqttSettings.from_url(_required(settings, "mqtt"), settings["mqtt_ca"])


def _store(settings: dict[str, str | None]) -> InfluxStore:
    """The InfluxDB the settings name (server commands only: imported there)."""
    from waystation.store import InfluxStore  # noqa: PLC0415 - server extra

    return InfluxStore(
        _required(settings, "influx"), _required(settings, "database"),
        token=settings["influx_token"],
    )  # fmt: skip


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
    registry = load_registry(_required(s, "registry"))
    _mqtt_settings(s)
    print(
        f"{s['registry']}: OK — {len(registry.stations)} stations, {registry.device_count} devices"
    )
    return EXIT_OK


def _cmd_broker_config(args: argparse.Namespace) -> int:
    from waystation.brokerconfig import write_broker_config  # noqa: PLC0415

    registry = load_registry(_required(_settings(args), "registry"))
    files = write_broker_config(registry, args.out)
    print(f"{files.passwd}, {files.acl}: {registry.device_count} devices and the service accounts")
    print(f"{files.credentials}: passwords (secret), {len(files.new_accounts)} new")
    print("Mosquitto: password_file and acl_file pointing at these, allow_anonymous false")
    return EXIT_OK


def _cmd_sample_registry(_args: argparse.Namespace) -> int:
    print(
        files("waystation").joinpath("data/demo-stations.yaml").read_text(encoding="utf-8"), end=""
    )
    return EXIT_OK


def _cmd_edge(args: argparse.Namespace) -> int:
    # Edge-only imports: this command runs on a box with the `edge` extra.
    from edge.agent import EdgeAgent  # noqa: PLC0415
    from edge.config import (  # noqa: PLC0415
        SAMPLE,
        AgentConfig,
        AgentConfigError,
        OutboxConfig,
        load_agent_config,
    )

    if args.sample_config:
        print(SAMPLE, end="")
        return EXIT_OK
    s = _settings(args)
    try:
        if args.agent_config:
            config = load_agent_config(args.agent_config)
            if args.outbox:
                outbox = config.outbox.model_dump() | {"path": args.outbox}
                config = config.model_copy(update={"outbox": OutboxConfig(**outbox)})
        else:
            registry = load_registry(_required(s, "registry"))
            outbox_path = args.outbox or Path("edge-outbox") / f"{args.station}.db"
            config = AgentConfig.from_registry(
                registry, args.station, outbox=outbox_path, interval=args.interval
            )
    except AgentConfigError as exc:
        print(f"waystation edge: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        agent = EdgeAgent(
            config, _mqtt_settings(s), backfill=args.backfill, backfill_step=args.backfill_step
        )
    except ValueError as exc:
        print(f"waystation edge: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    with agent:
        log.info(
            "agent %s of %s running; outbox %s",
            config.agent_device,
            config.station,
            config.outbox.path,
        )
        _wait_for_signal()
    log.info("agent stopped: %s; outbox depth %d", agent.stats, agent.outbox.depth)
    return EXIT_OK


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.decode import TimeWindow  # noqa: PLC0415 - server extra
    from ingest.health import HealthServer  # noqa: PLC0415
    from ingest.worker import IngestConfig, IngestWorker  # noqa: PLC0415
    from waystation.store import QueryError, StoreUnavailable  # noqa: PLC0415

    s = _settings(args)
    registry = load_registry(_required(s, "registry"))
    store = _store(s)
    try:
        store.create_database()  # InfluxDB 1.x; on 2.x the DBRP mapping exists already
    except (QueryError, StoreUnavailable) as exc:
        log.info("could not create database %s (%s); writing to it anyway", store.database, exc)
    try:
        config = IngestConfig(
            client_id=args.client_id,
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
    worker = IngestWorker(_mqtt_settings(s), store, registry, config)
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
    from rules.outage.command import serve  # noqa: PLC0415 - server extra
    from rules.outage.config import RulesConfigError, load_rules_config  # noqa: PLC0415
    from rules.outage.service import RulesService  # noqa: PLC0415

    if args.sample_config:
        print(files("rules.outage").joinpath("sample-rules.yaml").read_text("utf-8"), end="")
        return EXIT_OK
    s = _settings(args)
    registry = load_registry(_required(s, "registry"))
    try:
        config = load_rules_config(args.rules_config)
    except RulesConfigError as exc:
        print(f"waystation rules: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    store = _store(s)
    service = RulesService(
        _mqtt_settings(s), registry, config, args.state, store=store, client_id=args.client_id
    )
    serve(service, registry, store, args.reports, _wait_for_signal)
    return EXIT_OK


def _cmd_silence(args: argparse.Namespace) -> int:
    from rules.outage.command import add_silence, list_silences, remove_silence  # noqa: PLC0415

    try:
        if args.action == "add":
            registry = load_registry(args.registry) if args.registry else None
            print(add_silence(args.state, args.station, args.until, start=args.start,
                              reason=args.reason, registry=registry))  # fmt: skip
        elif args.action == "remove":
            found = remove_silence(args.state, args.id)
            print(f"silence {args.id} {'removed' if found else 'not found'}")
            return EXIT_OK if found else EXIT_FAILURE
        else:
            for line in list_silences(args.state):
                print(line)
    except ValueError as exc:
        print(f"waystation silence: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def _cmd_dashboards(args: argparse.Namespace) -> int:
    from dashboards.boards import DASHBOARDS  # noqa: PLC0415 - server extra
    from dashboards.generate import JSON_DIR, generate  # noqa: PLC0415
    from dashboards.push import PushError, push  # noqa: PLC0415

    if args.action == "build":
        for path in generate(args.out or JSON_DIR):
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
    try:
        urls = push(args.grafana, credential, folder=args.folder, datasource_uid=args.datasource,
                    overwrite=args.overwrite, names=args.names)  # fmt: skip
    except PushError as exc:
        print(f"waystation dashboards push: {exc}", file=sys.stderr)
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
    from rules.allocation.report import AllocationError, parse_month  # noqa: PLC0415
    from rules.allocation.tariff import TariffError, load_tariffs, shipped_tariffs  # noqa: PLC0415
    from waystation.store import StoreError  # noqa: PLC0415

    s = _settings(args)
    registry = load_registry(_required(s, "registry"))
    console = Console(stderr=True)
    try:
        tariffs = load_tariffs(args.tariffs) if args.tariffs else shipped_tariffs()
        store = _store(s)
        job = ReportJob(
            registry, tariffs, store, args.out, args.stations, not args.no_influx, console
        )
        if args.schedule:
            run_scheduled(job, ZoneInfo(registry.timezone), _wait_for_signal)
            return EXIT_OK
        report, csv_path, xlsx_path = job.run(parse_month(args.month))
    except (TariffError, AllocationError) as exc:
        print(f"waystation report: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as exc:
        print(f"waystation report: InfluxDB: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print_summary(Console(), report, registry)
    print(f"written: {csv_path} and {xlsx_path}")
    return EXIT_OK


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
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (RegistryError, SettingsError) as exc:
        print(f"waystation {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
