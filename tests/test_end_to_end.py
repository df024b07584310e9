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
        r = json.loads(msg.payload)
        fields = tuple(sorted({**r["data"], "seq": r["seq"]}.items()))
        points.add((r["kind"], station, device, r["ts"], fields))
    return points


def test_readings_land_with_the_right_shape_and_bad_input_is_dead_lettered(
    mqtt_settings: MqttSettings,
    store: InfluxStore,
    registry: Registry,
    uid: str,
    deadletter_file: Path,
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
        agent = EdgeAgent(
            mqtt_settings, registry, station, interval_override=timedelta(seconds=0.2)
        )
        with agent:
            assert agent.wait_connected()
            wait_for(lambda: agent.stats.published >= 12, "a first round of readings")
            # Three kinds of garbage in the middle of the stream.
            spy.publish(f"stations/{station}/{station}-disp/telemetry", NOT_JSON)
            spy.publish(f"stations/{station}/{station}-disp/telemetry", BAD_SCHEMA)
            spy.publish(f"stations/{station}/ghost-device/telemetry", UNKNOWN_DEVICE)
            before = agent.stats.published
            wait_for(lambda: agent.stats.published >= before + 30, "readings after the garbage")
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

    # The agent said online while running and offline when it stopped (retained status).
    [status] = store.query('SELECT "online" FROM "device_status" GROUP BY "device"')
    assert status.tags["device"] == f"{station}-gw"
    assert [row[1] for row in status.values] == [1, 0]
