"""A simulated station through real Mosquitto and real InfluxDB.

Everything the agent published is captured by an independent subscriber and
compared with what InfluxDB holds afterwards: same measurements, tags, fields
and timestamps, nothing missing, nothing extra. Malformed messages sent in the
middle are dead-lettered (topic and file) and do not stop the worker.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.config import AgentConfig
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import MqttSpy, wait_for
from waystation.registry import Registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

MEASUREMENTS = ("door_counter", "water_dispenser", "charging_locker", "meter", "gateway")
NOT_JSON = b"{not json"
BAD_SCHEMA = json.dumps({"v": 1, "kind": "water_dispenser", "ts": 1, "seq": 1, "data": {}}).encode()
UNKNOWN_DEVICE = b"{}"
INJECTED = {NOT_JSON, BAD_SCHEMA, UNKNOWN_DEVICE}


def stored_points(store: InfluxStore) -> set[tuple[Any, ...]]:
    points = set()
    for m in MEASUREMENTS:
        for series in store.query(f'SELECT * FROM "{m}" GROUP BY "station", "device"'):
            for rec in series.records():
                fields = tuple(
                    sorted(
                        (k, v)
                        for k, v in rec.items()
                        if k not in ("time", "station", "device") and v is not None
                    )
                )
                points.add((m, rec["station"], rec["device"], rec["time"], fields))
    return points


def published_points(spy: MqttSpy) -> set[tuple[Any, ...]]:
    points = set()
    for msg in spy.on("/telemetry"):
        _, station, device, _ = msg.topic.split("/")
        if msg.payload in INJECTED:
            continue
        body = json.loads(msg.payload)
        for r in body if isinstance(body, list) else [body]:  # live readings or a replay array
            fields = tuple(sorted({**r["data"], "seq": r["seq"]}.items()))
            points.add((r["kind"], station, device, r["ts"], fields))
    return points


def test_readings_land_with_the_right_shape_and_bad_input_is_dead_lettered(
    mqtt_settings: MqttSettings,
    store: InfluxStore,
    registry: Registry,
    uid: str,
    deadletter_file: Path,
    tmp_path: Path,
) -> None:
    [station] = registry.stations
    config = IngestConfig(
        client_id=f"ingest-{uid}",
        topic_filter=f"stations/{station}/+/+",
        deadletter_path=deadletter_file,
    )
    with (
        MqttSpy(
            mqtt_settings, f"spy-{uid}", [f"stations/{station}/#", "waystation/deadletter/#"]
        ) as spy,
        IngestWorker(mqtt_settings, store, registry, config) as worker,
    ):
        assert worker.wait_subscribed()
        agent_config = AgentConfig.from_registry(
            registry, station, outbox=tmp_path / "outbox.db", interval=timedelta(seconds=0.2)
        )
        agent = EdgeAgent(agent_config, mqtt_settings)
        with agent:
            assert agent.wait_connected()
            wait_for(lambda: agent.stats.readings_acked >= 12, "a first round of readings")
            # Three kinds of garbage in the middle of the stream.
            spy.publish(f"stations/{station}/{station}-disp/telemetry", NOT_JSON)
            spy.publish(f"stations/{station}/{station}-disp/telemetry", BAD_SCHEMA)
            spy.publish(f"stations/{station}/ghost-device/telemetry", UNKNOWN_DEVICE)
            before = agent.stats.readings_acked
            wait_for(
                lambda: agent.stats.readings_acked >= before + 30, "readings after the garbage"
            )
        published = published_points(spy)
        wait_for(
            lambda: len(stored_points(store)) >= len(published), "InfluxDB to hold every reading"
        )
        assert worker.running, "a malformed message stopped the worker"
        assert dict(worker.deadletters.counts) == {"bad_json": 1, "schema": 1, "unknown_device": 1}
        wait_for(lambda: len(spy.on("/deadletter/schema")) == 1, "the dead letter on its topic")

    stored = stored_points(store)
    assert stored == published
    assert {p[0] for p in stored} == set(MEASUREMENTS)
    # Readings published after the garbage were stored too.
    assert max(p[3] for p in stored) > min(p[3] for p in stored)

    # The dead-letter file keeps the reason and the original payload.
    letters = [json.loads(line) for line in deadletter_file.read_text().splitlines()]
    assert sorted(letter["code"] for letter in letters) == ["bad_json", "schema", "unknown_device"]
    bad_json = next(letter for letter in letters if letter["code"] == "bad_json")
    assert bad_json["payload"] == "{not json"
    assert bad_json["topic"].endswith("-disp/telemetry")

    # The agent said online while running and offline when it stopped; each device
    # it read said online (retained statuses).
    statuses = {
        s.tags["device"]: [row[1] for row in s.values]
        for s in store.query('SELECT "online" FROM "device_status" GROUP BY "device"')
    }
    assert statuses.pop(f"{station}-gw") == [1, 0]
    assert statuses == {d: [1] for d in registry.stations[station].devices if not d.endswith("-gw")}
