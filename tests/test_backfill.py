"""Simulated history through the real pipeline: agent outbox → Mosquitto → ingest → InfluxDB."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.config import AgentConfig
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import wait_for
from waystation.registry import Registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration


def test_a_backfilled_day_lands_and_live_readings_continue_it(
    mqtt_settings: MqttSettings, store: InfluxStore, registry: Registry, uid: str, tmp_path: Path
) -> None:
    [station] = registry.stations
    config = AgentConfig.from_registry(
        registry, station, outbox=tmp_path / "outbox.db", interval=timedelta(seconds=0.2)
    )
    progress: list[tuple[int, int]] = []
    started_ms = int(time.time() * 1000)
    ingest = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
    with IngestWorker(mqtt_settings, store, registry, ingest) as worker:
        assert worker.wait_subscribed()
        agent = EdgeAgent(
            config,
            mqtt_settings,
            backfill=timedelta(days=1),
            backfill_step=timedelta(minutes=5),
            progress=lambda done, total: progress.append((done, total)),
        )
        with agent:
            wait_for(lambda: agent.outbox.depth == 0 and agent.stats.readings >= 12, "the replay")
        wait_for(
            lambda: worker.stats.points_written >= agent.stats.readings_acked, "ingest to catch up"
        )

    assert progress[-1] == (288, 288)  # one day in 5-minute steps
    door = f"{station}-door"
    [series] = store.query(f'SELECT "in_total" FROM "door_counter" WHERE "device" = \'{door}\'')
    times = [row[0] for row in series.values]
    history = [t for t in times if t < started_ms]
    assert len(history) == 288
    assert history[0] >= started_ms - 86_400_000 - 1000
    assert len(times) > len(history), "no live readings after the history"
    visits = [row[1] for row in series.values]
    assert visits == sorted(visits), "the register stepped back between history and live"
    assert visits[-1] > visits[0] > 0
    for kind in ("water_dispenser", "charging_locker", "meter"):
        [count] = store.query(f'SELECT count("seq") FROM "{kind}" WHERE time < {started_ms}ms')
        assert count.values[0][1] >= 288
