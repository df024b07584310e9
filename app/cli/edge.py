"""`waystation edge`: the edge agent of one station (real devices, or the registry's simulated).

It runs on a box with only the `edge` extra: nothing here imports a server package.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app.checks import Checked, Plan
from app.cli.common import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
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
    wait_for_signal,
)
from waystation.health import HealthServer
from waystation.settings import MqttVersion

if TYPE_CHECKING:
    from edge.agent import EdgeAgent
    from edge.config import AgentConfig


def add_parser(sub: Subcommands) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "edge", parents=[connection_options(top=False)], help="run the edge agent of one station"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--agent-config", type=Path, help="the agent's devices and drivers (YAML)")
    which.add_argument("--station", help="simulate this registry station's devices")
    which.add_argument("--sample-config", action="store_true", help="print an example agent config")
    p.add_argument("--interval", type=duration, help="with --station: every device's interval")
    p.add_argument("--outbox", type=Path, help="outbox file (overrides the agent config's)")
    p.add_argument(
        "--outbox-max-readings", type=int, help="readings the outbox keeps (overrides the config's)"
    )
    p.add_argument(
        "--outbox-max-age", type=duration, help="age the outbox keeps (overrides the config's)"
    )
    p.add_argument(
        "--backfill",
        type=duration,
        help="with --station: first simulate this much history (e.g. 30d) and publish it",
    )
    p.add_argument(
        "--backfill-step",
        type=duration,
        default=timedelta(minutes=1),
        help="interval of the backfilled readings (default 1m)",
    )
    health_port_option(p, 0, serves="connection, outbox")
    mqtt_version_option(
        p,
        "5 (default: the broker says when it refuses a reading, which then stays in the "
        "outbox) or 3.1.1 (for old brokers: a refused reading looks delivered and is deleted)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from edge.agent import BackfillInterrupted, BackfillTooLarge, EdgeAgent  # edge extra
    from edge.config import SAMPLE

    if args.sample_config:
        print(SAMPLE, end="")
        return EXIT_OK
    s = settings(args)
    result = checked(
        Plan(
            registry=Path(s.registry),
            registry_required=args.agent_config is None or s.given("registry"),
            agent_config=args.agent_config,
            station=args.station,
            mqtt=s.mqtt,
            mqtt_ca=s.mqtt_ca,
            origins=setting_origins(args),
        )
    )
    config = _agent_config(args, result)
    try:
        agent = EdgeAgent(
            config, mqtt_settings(s), backfill=args.backfill, backfill_step=args.backfill_step,
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
        wait_for_signal()
    finally:
        if health is not None:
            health.stop()
        agent.stop()
    log.info("agent stopped: %s; outbox depth %d", agent.stats, agent.outbox.depth)
    return EXIT_OK


def _agent_config(args: argparse.Namespace, result: Checked) -> AgentConfig:
    from edge.config import AgentConfig, OutboxConfig

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
