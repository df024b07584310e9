"""How the worker handles what InfluxDB refuses, and what its health endpoint says."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.localservers import InfluxServer, free_port
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import MqttSpy, http_get, wait_for
from tests.load import LoadPublisher, door_counter_registry, stored_seqs
from waystation.contract import DeadLetterCode
from waystation.health import HealthServer
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
        assert worker.deadletters.counts[DeadLetterCode.REJECTED_BY_STORE] == len(
            load.expected - kept
        )
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


class CountingStore(InfluxStore):
    """The real store, counting the writes it sends."""

    writes = 0

    def write_lines(self, lines: Sequence[str]) -> None:
        self.writes += 1
        super().write_lines(lines)


def test_a_field_type_conflict_costs_two_writes_not_a_bisection(
    mqtt_settings: MqttSettings, influxdb: InfluxServer, uid: str, tmp_path: Path
) -> None:
    """One dispenser sends `fault` as text where the database holds integers.

    InfluxDB's 400 names the measurement and field, so the worker takes out
    the messages with that field of that type and writes the rest again: a
    batch costs its write, the rewrite and the dead-letter count, however many
    messages it holds. (Bisecting cost about 2 log2(n) writes a batch.)
    """
    station = f"fc-{uid}"
    disps = [f"{station}-disp{n}" for n in range(5)]
    registry = parse_registry({"version": 1, "stations": {station: {
        "name": "冲突", "model": "industry_managed",
        "devices": {d: {"kind": "water_dispenser"} for d in disps}}}})  # fmt: skip
    store = CountingStore(influxdb.url, f"fc_{uid}")
    store.create_database()
    now = int(time.time() * 1000)
    # An older firmware wrote fault codes as integers into this shard.
    store.write_lines([f"water_dispenser,device=old,station={station} fault=3i {now - 60_000}"])
    config = IngestConfig(
        client_id=f"ingest-{uid}",
        topic_filter=f"stations/{station}/+/+",
        deadletter_path=tmp_path / "dead.jsonl",
        batch_max_wait_s=1.0,
    )
    total, faulty = 1000, disps[0]
    expected: set[tuple[str, int]] = set()
    try:
        with (
            IngestWorker(mqtt_settings, store, registry, config) as worker,
            MqttSpy(mqtt_settings, f"pub-{uid}", []) as spy,
        ):
            assert worker.wait_subscribed()
            for seq in range(total):
                device = disps[seq % len(disps)]
                data = {"water_l_total": 1.0, "energy_kwh_total": 1.0, "temp_c": 90.0,
                        "heating": True} | ({"fault": "E1"} if device == faulty else {})  # fmt: skip
                body = {
                    "v": 1,
                    "kind": "water_dispenser",
                    "ts": now + seq,
                    "seq": seq,
                    "data": data,
                }
                spy.client.publish(f"stations/{station}/{device}/telemetry", json.dumps(body), 1)
                if device != faulty:
                    expected.add((device, seq))
            wait_for(lambda: worker.stats.acked >= total, "every message handled", 60)
        stored = {
            (series.tags["device"], row[1])
            for series in store.query('SELECT "seq" FROM "water_dispenser" GROUP BY "device"')
            for row in series.values
            if series.tags["device"] != "old"
        }
        assert stored == expected
        assert worker.deadletters.counts == {"rejected_by_store": total // len(disps)}
        writes = store.writes - 1  # the seeding write
        assert writes <= 3 * worker.stats.batches, (writes, worker.stats.batches)
    finally:
        store.drop_database()


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
