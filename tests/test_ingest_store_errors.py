"""How the worker handles what InfluxDB refuses, and what its health endpoint says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.health import HealthServer
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import MqttSpy, http_get, wait_for
from tests.load import LoadPublisher, door_counter_registry, stored_seqs
from waystation.localservers import InfluxServer, free_port
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration


def test_points_influxdb_rejects_are_dead_lettered_and_the_rest_stored(
    mqtt_settings: MqttSettings, tmp_path: Path, uid: str
) -> None:
    """The database's series limit is reached: InfluxDB answers 400 (partial write).

    With room for 3 series and 5 devices, two devices' readings can never be
    stored. The worker bisects each refused batch, dead-letters exactly those
    readings and stores the others; nothing else is lost.
    """
    influx = InfluxServer(tmp_path / "influxdb", max_series=3)
    influx.start()
    try:
        store = InfluxStore(influx.url, "limited")
        store.create_database()
        station = f"bi-{uid}"
        registry = parse_registry(door_counter_registry(station, 5))
        config = IngestConfig(
            client_id=f"ingest-{uid}",
            topic_filter=f"stations/{station}/+/+",
            deadletter_path=tmp_path / "dead.jsonl",
            batch_max_wait_s=1.0,
        )
        with IngestWorker(mqtt_settings, store, registry, config) as worker:
            assert worker.wait_subscribed()
            load = LoadPublisher(mqtt_settings, station, 5, 50, 1000, uid).start()
            wait_for(lambda: worker.stats.acked >= 50, "every message handled")
            load.stop()
        stored = stored_seqs(store)
        kept_devices = {d for d, _ in stored}
        assert len(kept_devices) == 3
        kept = {(d, s) for d, s in load.expected if d in kept_devices}
        assert stored == kept
        assert worker.deadletters.counts["rejected_by_store"] == len(load.expected - kept)
        letters = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
        assert {json.loads(letter["payload"])["seq"] for letter in letters} == {
            s for _, s in load.expected - kept
        }
        assert all("max-series-per-database" in letter["reason"] for letter in letters)
    finally:
        influx.stop()


def test_a_batch_over_the_servers_body_limit_is_split(
    mqtt_settings: MqttSettings, tmp_path: Path, uid: str
) -> None:
    influx = InfluxServer(tmp_path / "influxdb", max_body_bytes=4000)  # about 40 points
    influx.start()
    try:
        store = InfluxStore(influx.url, "split")
        store.create_database()
        station = f"sp-{uid}"
        registry = parse_registry(door_counter_registry(station, 5))
        config = IngestConfig(
            client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+", batch_max_wait_s=1.0
        )
        with IngestWorker(mqtt_settings, store, registry, config) as worker:
            assert worker.wait_subscribed()
            load = LoadPublisher(mqtt_settings, station, 5, 400, 2000, uid).start()
            wait_for(lambda: worker.stats.acked >= 400, "every message handled")
            load.stop()
        assert worker.stats.batch_splits > 0
        assert stored_seqs(store) == load.expected
        assert not worker.deadletters.counts
    finally:
        influx.stop()


@pytest.fixture
def health(
    mqtt_settings: MqttSettings, influxdb: InfluxServer, uid: str
) -> Iterator[tuple[IngestWorker, int, MqttSpy]]:
    station = f"hc-{uid}"
    store = InfluxStore(influxdb.url, f"h_{uid}")
    store.create_database()
    registry = parse_registry(door_counter_registry(station, 1))
    config = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
    worker = IngestWorker(mqtt_settings, store, registry, config)
    server = HealthServer(worker, free_port())
    with worker, MqttSpy(mqtt_settings, f"pub-{uid}", []) as spy:
        server.start()
        yield worker, server.port, spy
        server.stop()
    store.drop_database()


def test_health_endpoints(health: tuple[IngestWorker, int, MqttSpy], uid: str) -> None:
    worker, port, spy = health
    assert worker.wait_subscribed()
    wait_for(lambda: http_get(port, "/readyz")[0] == 200, "readiness")
    assert http_get(port, "/healthz") == (200, "ok\n")
    spy.publish(f"stations/hc-{uid}/hc-{uid}-d0/telemetry", b"{broken")
    wait_for(lambda: worker.stats.acked >= 1, "the broken message handled")
    status, text = http_get(port, "/metrics")
    assert status == 200
    assert 'waystation_ingest_deadletters_total{reason="bad_json"} 1' in text
    assert "waystation_ingest_received_total 1" in text
    assert "waystation_ingest_connected 1" in text
    assert http_get(port, "/nope")[0] == 404
    worker.stop()  # the writer stops: no longer alive, no longer ready
    assert http_get(port, "/healthz")[0] == 503
    assert http_get(port, "/readyz")[0] == 503
