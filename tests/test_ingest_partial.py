"""Refusals that must cost only what is bad, on real Mosquitto and InfluxDB.

A replay array with one bad reading stores the other 99; a device sending
thousands of made-up event types adds one series, not thousands; a broker
that refuses ingest's dead letters is said once per reason (the letters are
still filed and counted).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import MqttSpy, wait_for
from tests.load import door_counter_registry, stored_count, stored_seqs
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration


def _reading(n: int, ts: int) -> dict[str, object]:
    return {
        "v": 1,
        "kind": "door_counter",
        "ts": ts,
        "seq": n,
        "data": {"in_total": n, "out_total": n},
    }


def test_one_bad_reading_in_a_replay_array_loses_only_itself(
    mosquitto: MosquittoServer, store: InfluxStore, uid: str, tmp_path: Path
) -> None:
    station = f"ar-{uid}"
    registry = parse_registry(door_counter_registry(station, 1))
    settings = MqttSettings.from_url(mosquitto.url)
    config = IngestConfig(
        client_id=f"ingest-{uid}",
        topic_filter=f"stations/{station}/+/+",
        deadletter_path=tmp_path / "dead.jsonl",
    )
    now = int(time.time() * 1000)
    replay = [_reading(n, now - 100_000 + n) for n in range(100)]
    replay[41]["ts"] = now + 2 * 3600 * 1000  # a clock that ran ahead before NTP
    with (
        MqttSpy(settings, f"spy-{uid}", ["waystation/deadletter/#"]) as spy,
        IngestWorker(settings, store, registry, config) as worker,
    ):
        assert worker.wait_subscribed()
        spy.publish(f"stations/{station}/{station}-d0/telemetry", json.dumps(replay))
        wait_for(lambda: stored_count(store) >= 99, "the 99 good readings")
        wait_for(lambda: spy.messages, "the dead letter")
    assert stored_seqs(store) == {(f"{station}-d0", n) for n in range(100) if n != 41}
    [letter] = [json.loads(m.payload) for m in spy.messages]
    assert letter["code"] == "ts_out_of_window"
    assert letter["reason"].startswith("1 of 100 readings refused: [41] ts ")
    assert worker.deadletters.counts == {"ts_out_of_window": 1}
    filed = (tmp_path / "dead.jsonl").read_text().splitlines()
    assert len(filed) == 1


def test_made_up_event_types_add_one_series(
    mosquitto: MosquittoServer, store: InfluxStore, uid: str
) -> None:
    station = f"ev-{uid}"
    registry = parse_registry(door_counter_registry(station, 1))
    settings = MqttSettings.from_url(mosquitto.url)
    config = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
    now = int(time.time() * 1000)
    with (
        MqttSpy(settings, f"pub-{uid}", []) as pub,
        IngestWorker(settings, store, registry, config) as worker,
    ):
        assert worker.wait_subscribed()
        for n in range(300):
            event = {"v": 1, "ts": now - n, "seq": n, "type": f"t{n}_x", "detail": {}}
            pub.publish(f"stations/{station}/{station}-d0/event", json.dumps(event))
        pub.publish(
            f"stations/{station}/{station}-d0/event",
            json.dumps({"v": 1, "ts": now, "seq": 9, "type": "fault", "detail": {}}),
        )
        wait_for(lambda: worker.stats.points_written >= 301, "every event written")
    series = store.query('SHOW SERIES FROM "event"')
    keys = sorted(row[0] for s in series for row in s.values)
    assert keys == [
        f"event,device={station}-d0,station={station},type=fault",
        f"event,device={station}-d0,station={station},type=other",
    ]
    [stored] = store.query('SELECT count("event_type") FROM "event"')
    assert stored.values[0][1] == 300


def test_refused_dead_letters_are_said_once_and_still_filed(
    tmp_path: Path, store: InfluxStore, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite stations/#\n")  # nothing under waystation/deadletter/
    broker = MosquittoServer(tmp_path / "m", f"acl_file {acl}\n")
    broker.start()
    caplog.set_level(logging.WARNING)
    try:
        station = f"dl-{uid}"
        registry = parse_registry(door_counter_registry(station, 1))
        settings = MqttSettings.from_url(broker.url)
        config = IngestConfig(
            client_id=f"ingest-{uid}",
            topic_filter=f"stations/{station}/+/+",
            deadletter_path=tmp_path / "dead.jsonl",
        )
        with (
            MqttSpy(settings, f"pub-{uid}", []) as pub,
            IngestWorker(settings, store, registry, config) as worker,
        ):
            assert worker.wait_subscribed()
            for n in range(5):
                pub.publish(f"stations/{station}/{station}-d0/telemetry", f"not json {n}")
            wait_for(lambda: sum(worker.deadletters.refused.values()) >= 5, "five refusals")
        said = [r.getMessage() for r in caplog.records if "refused a dead letter" in r.getMessage()]
        assert len(said) == 1
        assert "Not authorized (0x87)" in said[0]
        assert len((tmp_path / "dead.jsonl").read_text().splitlines()) == 5
        assert worker.deadletters.counts == {"bad_json": 5}
    finally:
        broker.stop()
