"""Poison messages on a real broker: none stops, disconnects or blocks ingest.

Each of these once took ingest down for good or into a disconnect loop: a
key or a kind with a line break (the dead letter's point could not be
encoded and the writer thread died, unacknowledged, so every restart died on
it again), and payloads whose dead letter grew past the broker's packet
limit (Mosquitto dropped ingest, paho re-sent the letter after each
reconnect). Now they are dead-lettered, good readings after them are all
stored, ingest keeps its one connection, and a restart finds nothing left.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from ingest.deadletter import MAX_LETTER_BYTES
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import MqttSpy, wait_for
from tests.load import LoadPublisher, door_counter_registry, stored_count, stored_seqs
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

DEVICES = 4


def poison(station: str) -> list[tuple[str, bytes]]:
    door = f"stations/{station}/{station}-d0/telemetry"
    head = b'{"v":1,"kind":"door_counter","ts":%d,"seq":1,' % int(time.time() * 1000)
    return [
        (door, head + b'"data":{"in_total":1,"out_total":1,"x\\ny":1}}'),  # a key with a line break
        (door, head.replace(b"door_counter", b"door\\ncounter") + b'"data":{}}'),  # a kind
        (door, b"\x01" * 200_000),  # 200 KB of control characters: 1.2 MB once escaped
        (door, bytes(range(256)) * 3200),  # 800 KB of binary: 1.1 MB in base64
        (door, head + b'"data":{"in_total":1,"out_total":1,"\\ud800":1}}'),  # a lone surrogate
        (f"stations/{station}/{station}-d1/status",
         b'{"v":1,"ts":%d,"state":"online","agent":"a\\nb"}' % int(time.time() * 1000)),
        (door, b"[" * 300_000 + b"]" * 300_000),  # deep nesting
    ]  # fmt: skip


def broker_log_lines(path: Path, client_id: str) -> list[str]:
    return [line for line in path.read_text().splitlines() if client_id in line]


def test_poison_then_good_readings_every_good_one_stored_on_one_connection(
    tmp_path: Path, store: InfluxStore, uid: str
) -> None:
    broker_log = tmp_path / "broker.log"
    # Written as it happens (stdout is buffered): each of ingest's connections shows here.
    broker = MosquittoServer(tmp_path / "mosquitto", f"log_dest file {broker_log}\n")
    broker.start()
    try:
        station = f"px-{uid}"
        registry = parse_registry(door_counter_registry(station, DEVICES))
        settings = MqttSettings.from_url(broker.url)
        client_id = f"ingest-{uid}"
        config = IngestConfig(
            client_id=client_id,
            topic_filter=f"stations/{station}/+/+",
            deadletter_path=tmp_path / "dead.jsonl",
        )
        bad = poison(station)
        with (
            MqttSpy(settings, f"spy-{uid}", ["waystation/deadletter/#"]) as spy,
            IngestWorker(settings, store, registry, config) as worker,
        ):
            assert worker.wait_subscribed()
            # wait_subscribed returns before the SUBACK: one reading through first.
            first = LoadPublisher(settings, station, DEVICES, 1, 1, f"{uid}f")
            first.start()
            wait_for(lambda: stored_seqs(store) >= first.expected, "ingest subscribed")
            first.stop()
            for topic, payload in bad:
                spy.publish(topic, payload)
            load = LoadPublisher(settings, station, DEVICES, 600, 500, uid, first_seq=1).start()
            wait_for(lambda: load.done, "the good readings published", 60)
            wait_for(lambda: stored_count(store) >= load.total, "every good reading stored", 60)
            load.stop()
            wait_for(lambda: len(spy.on("")) >= len(bad), "every dead letter on its topic")

            assert stored_seqs(store) == load.expected | first.expected
            assert worker.running
            assert sum(worker.deadletters.counts.values()) == len(bad)
            assert all(len(m.payload) <= MAX_LETTER_BYTES for m in spy.messages)
            # One connection, never dropped: no reconnect loop.
            lines = broker_log_lines(broker_log, client_id)
            assert len([x for x in lines if f" as {client_id} (" in x]) == 1, lines
            assert not [x for x in lines if "disconnect" in x or "closed" in x], lines

        # The whole payload is filed, whatever its size.
        letters = [json.loads(x) for x in config.deadletter_path.read_text().splitlines()]  # type: ignore[union-attr]
        assert sorted(x["payload_bytes"] for x in letters) == sorted(len(p) for _, p in bad)
        assert any(x["payload_b64"] and len(x["payload_b64"]) > 1_000_000 for x in letters)

        # A restart finds nothing left to choke on: only a new reading arrives.
        with IngestWorker(settings, store, registry, config) as again:
            assert again.wait_subscribed()
            probe = LoadPublisher(settings, station, DEVICES, 1, 1, f"{uid}p", first_seq=1000)
            probe.start()
            wait_for(lambda: stored_seqs(store) >= probe.expected, "a reading after the restart")
            probe.stop()
            assert again.stats.received == 1
            assert not again.deadletters.counts
    finally:
        broker.stop()


def test_a_message_the_decoder_fails_on_is_dead_lettered_and_the_worker_goes_on(
    mqtt_settings: MqttSettings, store: InfluxStore, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong decoding one message (a bug, say) costs that message only."""
    station = f"pd-{uid}"
    registry = parse_registry(door_counter_registry(station, DEVICES))
    config = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
    with IngestWorker(mqtt_settings, store, registry, config) as worker:
        assert worker.wait_subscribed()
        decode = worker._decoder.decode

        def buggy(topic: str, payload: bytes, now_ms: int) -> object:
            if b"boom" in payload:
                raise RecursionError("a decoder bug")
            return decode(topic, payload, now_ms)

        monkeypatch.setattr(worker._decoder, "decode", buggy)
        first = LoadPublisher(mqtt_settings, station, DEVICES, 1, 1, f"{uid}f")
        first.start()  # wait_subscribed returns before the SUBACK: one reading through first
        wait_for(lambda: stored_seqs(store) >= first.expected, "ingest subscribed")
        first.stop()
        with MqttSpy(mqtt_settings, f"spy-{uid}", []) as spy:
            for _ in range(3):
                spy.publish(f"stations/{station}/{station}-d0/telemetry", b'{"boom": 1}')
        load = LoadPublisher(mqtt_settings, station, DEVICES, 100, 500, uid, first_seq=1).start()
        wait_for(lambda: stored_count(store) >= 101, "the readings after it")
        load.stop()
        assert worker.running
        assert worker.deadletters.counts == {"decode_failed": 3}
