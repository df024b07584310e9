"""`waystation ingest`: an ingest worker, MQTT → validation → batched writes to InfluxDB."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from app.checks import Plan
from app.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Subcommands,
    checked,
    connection_options,
    duration,
    health_port_option,
    log,
    mqtt_settings,
    mqtt_version_option,
    setting_origins,
    settings,
    store,
    wait_for_signal,
)
from waystation.contract import STATIONS_FILTER
from waystation.health import HealthServer
from waystation.settings import MqttVersion, SettingsError


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ingest",
        parents=[connection_options(top=False)],
        help="run an ingest worker (MQTT → InfluxDB)",
    )
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
    mqtt_version_option(
        p,
        "5 (default: sets session expiry and receive window) or 3.1.1 (about 50%% faster; "
        "needs the broker's max_inflight_messages sized, as the shipped Mosquitto config does)",
    )
    p.add_argument(
        "--topic",
        default=STATIONS_FILTER,
        help=f"topic filter to subscribe to (default {STATIONS_FILTER})",
    )
    p.add_argument(
        "--partition",
        help="i/N: take only the stations whose stable hash falls in part i of N (one "
        "subscription a station, restored by the broker after a restart; one process each, "
        "e.g. under a systemd template unit)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="run N partition processes (--partition i/N, client id {id}-p{i}) and supervise "
        "them (default 1: one process, every station)",
    )
    p.add_argument(
        "--mqtt-engine",
        choices=["socket", "paho"],
        default="socket",
        help="MQTT client: socket (default; reads in large chunks, acks a batch in one write) "
        "or paho",
    )
    p.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)  # touched once subscribed
    p.add_argument("--deadletter-file", type=Path, help="append dead letters here (JSON lines)")
    health_port_option(p, 9108)
    p.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        help="most messages written in one batch (default 5000)",
    )
    p.add_argument(
        "--batch-wait",
        type=duration,
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
        type=duration,
        default=timedelta(days=400),
        help="dead-letter readings older than this (default 400d)",
    )
    p.add_argument(
        "--max-ahead",
        type=duration,
        default=timedelta(minutes=10),
        help="dead-letter readings further in the future (default 10m)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise SettingsError("--workers must be 1 or more")
    if args.workers > 1:
        return _supervise(args)
    from ingest.decode import TimeWindow  # server extra
    from ingest.partition import Partition
    from ingest.worker import IngestConfig, IngestWorker
    from waystation.mqttsession import Engine
    from waystation.store import QueryError, StoreUnavailable

    s = settings(args)
    registry = checked(
        Plan(registry=Path(s.registry), mqtt=s.mqtt, mqtt_ca=s.mqtt_ca,
             influx=s.influx, origins=setting_origins(args))
    ).registry  # fmt: skip
    assert registry is not None  # noqa: S101 - checked raised otherwise
    mqtt = mqtt_settings(s)
    influx = store(s)
    try:
        influx.create_database()  # InfluxDB 1.x; on 2.x the DBRP mapping exists already
    except (QueryError, StoreUnavailable) as exc:
        log.info("could not create database %s (%s); writing to it anyway", influx.database, exc)
    try:
        config = IngestConfig(
            client_id=args.client_id or mqtt.username or "waystation-ingest-1",
            group=args.group,
            topic_filter=args.topic,
            partition=Partition.parse(args.partition) if args.partition else None,
            engine=Engine(args.mqtt_engine),
            mqtt_version=MqttVersion(args.mqtt_version),
            deadletter_path=args.deadletter_file,
            batch_max_messages=args.batch_size,
            batch_max_wait_s=args.batch_wait.total_seconds(),
            receive_maximum=args.receive_maximum,
            window=TimeWindow(max_age=args.max_age, max_ahead=args.max_ahead),
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    worker = IngestWorker(mqtt, influx, registry, config)
    health = HealthServer(worker, args.health_port) if args.health_port else None
    with worker:
        if health is not None:
            health.start()
            log.info("health and metrics on http://127.0.0.1:%d/metrics", health.port)
        if args.ready_file is not None:
            wait_for_signal(until=lambda: not worker.running or worker.subscribed)
            if worker.subscribed:
                args.ready_file.touch()
        wait_for_signal(until=lambda: not worker.running)
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


def _supervise(args: argparse.Namespace) -> int:
    import sys

    from app.ingestworkers import Supervisor, child_argv

    if args.partition or args.group:
        raise SettingsError("--workers makes the partitions itself: leave out --partition/--group")
    mqtt = mqtt_settings(settings(args))
    client_id = args.client_id or mqtt.username or "waystation-ingest-1"
    supervisor = Supervisor(child_argv(sys.argv[1:]), args.workers, client_id)
    return supervisor.run(args.health_port)
