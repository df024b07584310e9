"""Ingest under faults, on real servers that are killed and restarted for real.

Every test publishes a known set of (device, seq) readings and requires
InfluxDB to end with exactly that set: nothing lost, nothing extra (a
re-delivered reading writes the same point again, so duplicates cannot show).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.localservers import InfluxServer, MosquittoServer
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import wait_for
from tests.load import (
    IngestProcess,
    LoadPublisher,
    door_counter_registry,
    stored_count,
    stored_seqs,
    write_registry,
)
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

DEVICES = 10
DRAIN_S = 60.0


@pytest.fixture
def own_influx(tmp_path: Path) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path / "influxdb")
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("mqtt_version", ["5", "3.1.1"])
def test_kill9_of_a_worker_under_load_loses_nothing(
    mosquitto: MosquittoServer, store: InfluxStore, uid: str, tmp_path: Path, mqtt_version: str
) -> None:
    station = f"k9-{uid}"
    registry = write_registry(tmp_path / "stations.yaml", door_counter_registry(station, DEVICES))
    worker = IngestProcess(
        mosquitto.url,
        store,
        registry,
        f"ingest-{uid}",
        station,
        tmp_path / "ingest.log",
        mqtt_version=mqtt_version,
    ).start()
    wait_for(worker.ready, "the ingest process to be ready")
    load = LoadPublisher(
        MqttSettings.from_url(mosquitto.url), station, DEVICES, 3000, 600, uid
    ).start()

    wait_for(lambda: worker.written() >= 600, "the worker to write a first part")
    worker.kill9()
    killed_at = stored_count(store)
    assert killed_at < load.total, "the load finished before the kill: nothing was tested"

    # Same client id: the persistent session holds what arrived while it was down
    # and everything it had received but not acknowledged.
    restarted = IngestProcess(
        mosquitto.url,
        store,
        registry,
        f"ingest-{uid}",
        station,
        tmp_path / "ingest.log",
        mqtt_version=mqtt_version,
    ).start()
    wait_for(lambda: load.done, "the publisher to finish", DRAIN_S)
    wait_for(lambda: stored_count(store) >= load.total, "every reading in InfluxDB", DRAIN_S)
    assert restarted.terminate() == 0
    load.stop()
    assert stored_seqs(store) == load.expected
    assert stored_count(store) == load.total


def test_influxdb_down_for_a_while_loses_nothing(
    mosquitto: MosquittoServer, own_influx: InfluxServer, uid: str
) -> None:
    station = f"ix-{uid}"
    registry = parse_registry(door_counter_registry(station, DEVICES))
    store = InfluxStore(own_influx.url, "outage")
    store.create_database()
    settings = MqttSettings.from_url(mosquitto.url)
    config = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
    with IngestWorker(settings, store, registry, config) as worker:
        assert worker.wait_subscribed()
        load = LoadPublisher(settings, station, DEVICES, 2000, 500, uid).start()
        wait_for(lambda: worker.stats.messages_written >= 300, "a first part written")
        own_influx.stop()
        wait_for(
            lambda: worker.stats.write_retries >= 3, "the worker to retry against a dead InfluxDB"
        )
        assert not worker.ready
        held = worker.stats.received - worker.stats.acked
        assert held > 0, "messages were acknowledged without being written"
        own_influx.start()
        wait_for(lambda: load.done, "the publisher to finish", DRAIN_S)
        wait_for(lambda: stored_count(store) >= load.total, "every reading in InfluxDB", DRAIN_S)
        assert worker.ready
        load.stop()
    assert stored_seqs(store) == load.expected


def test_broker_restart_with_persistence_loses_nothing(
    own_mosquitto: MosquittoServer, store: InfluxStore, uid: str
) -> None:
    station = f"mq-{uid}"
    registry = parse_registry(door_counter_registry(station, DEVICES))
    settings = MqttSettings.from_url(own_mosquitto.url)
    config = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
    with IngestWorker(settings, store, registry, config) as worker:
        assert worker.wait_subscribed()
        load = LoadPublisher(settings, station, DEVICES, 2000, 500, uid).start()
        wait_for(lambda: worker.stats.messages_written >= 300, "a first part written")
        own_mosquitto.restart()
        wait_for(lambda: load.done, "the publisher to finish after the restart", DRAIN_S)
        wait_for(lambda: stored_count(store) >= load.total, "every reading in InfluxDB", DRAIN_S)
        load.stop()
    assert stored_seqs(store) == load.expected


def test_two_workers_share_the_load_and_one_carries_on_alone(
    mosquitto: MosquittoServer, store: InfluxStore, uid: str, tmp_path: Path
) -> None:
    station = f"sh-{uid}"
    registry = write_registry(tmp_path / "stations.yaml", door_counter_registry(station, DEVICES))
    group = f"g{uid}"
    a = IngestProcess(
        mosquitto.url, store, registry, f"a-{uid}", station, tmp_path / "a.log", group
    ).start()
    b = IngestProcess(
        mosquitto.url, store, registry, f"b-{uid}", station, tmp_path / "b.log", group
    ).start()
    wait_for(lambda: a.ready() and b.ready(), "both workers ready")
    load = LoadPublisher(
        MqttSettings.from_url(mosquitto.url), station, DEVICES, 3000, 600, uid
    ).start()

    wait_for(lambda: a.written() >= 200 and b.written() >= 200, "both workers to take a share")
    b.kill9()
    a_at_kill = a.written()
    wait_for(lambda: a.written() >= a_at_kill + 500, "worker a to carry on alone")
    wait_for(lambda: load.done, "the publisher to finish", DRAIN_S)
    # Mosquitto keeps routing part of the group's messages to b's persistent
    # session while b is down; they wait there until b returns.
    b_again = IngestProcess(
        mosquitto.url, store, registry, f"b-{uid}", station, tmp_path / "b.log", group
    ).start()
    wait_for(lambda: stored_count(store) >= load.total, "every reading in InfluxDB", DRAIN_S)
    assert a.terminate() == 0
    assert b_again.terminate() == 0
    load.stop()
    assert stored_seqs(store) == load.expected


@pytest.mark.parametrize("shared", [False, True], ids=["plain", "shared"])
def test_what_a_broker_restart_keeps_for_an_offline_worker(
    own_mosquitto: MosquittoServer, store: InfluxStore, uid: str, shared: bool
) -> None:
    """Ingest down, broker restarted, readings published, ingest back.

    A plain subscription is part of the persistent session and survives the
    restart: every reading arrives. Mosquitto 2.0 restores the session but not
    a shared subscription, so the readings published before the workers
    re-subscribe have nowhere to go. This test pins that limitation down: if a
    newer Mosquitto fixes it, it fails, and the docs should change with it.
    """
    station = f"rs-{uid}"
    registry = parse_registry(door_counter_registry(station, DEVICES))
    settings = MqttSettings.from_url(own_mosquitto.url)
    config = IngestConfig(
        client_id=f"ingest-{uid}",
        topic_filter=f"stations/{station}/+/+",
        group=f"g{uid}" if shared else None,
    )
    with IngestWorker(settings, store, registry, config) as worker:
        assert worker.wait_subscribed()  # creates the persistent session and subscription
    own_mosquitto.restart()
    load = LoadPublisher(settings, station, DEVICES, 300, 1000, uid).start()
    wait_for(lambda: load.done, "the broker to acknowledge every reading")
    load.stop()
    with IngestWorker(settings, store, registry, config) as worker:
        assert worker.wait_subscribed()
        if shared:
            # A reading published after re-subscribing arrives; the queued ones
            # would have arrived before it, and none did.
            probe = LoadPublisher(settings, station, DEVICES, 1, 1, f"{uid}p", first_seq=load.total)
            probe.start()
            wait_for(
                lambda: worker.stats.messages_written >= 1, "a reading sent after re-subscribing"
            )
            probe.stop()
            assert stored_seqs(store) == probe.expected, (
                "Mosquitto now restores shared subscriptions: update the docs and this test"
            )
        else:
            wait_for(
                lambda: stored_count(store) >= load.total, "every reading queued in the session"
            )
            assert stored_seqs(store) == load.expected


def test_past_the_queue_limit_the_broker_drops_and_ingest_stores_the_rest(
    tmp_path: Path, store: InfluxStore, uid: str
) -> None:
    """Mosquitto silently drops QoS 1 messages for an offline session past max_queued_messages.

    The shipped limit (200,000) is too big to fill in a test; this broker runs
    the same file with the limit lowered to 100, which is what a district hits
    when ingest is down longer than the limit was sized for.
    """
    limit = 100
    broker = MosquittoServer(tmp_path / "mosquitto", extra_config=f"max_queued_messages {limit}\n")
    broker.start()
    try:
        station = f"ql-{uid}"
        registry = parse_registry(door_counter_registry(station, DEVICES))
        settings = MqttSettings.from_url(broker.url)
        config = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
        with IngestWorker(settings, store, registry, config) as worker:
            assert worker.wait_subscribed()
        load = LoadPublisher(settings, station, DEVICES, 3 * limit, 1000, uid).start()
        wait_for(lambda: load.done, "the broker to acknowledge every reading")
        load.stop()
        with IngestWorker(settings, store, registry, config) as worker:
            assert worker.wait_subscribed()
            # A reading published now arrives after everything the session
            # queued (one session, in order), so once it is stored nothing more
            # is on its way.
            probe = LoadPublisher(settings, station, DEVICES, 1, 1, f"{uid}p", first_seq=load.total)
            probe.start()
            wait_for(lambda: stored_seqs(store) >= probe.expected, "the probe reading")
            probe.stop()
        # The broker acknowledged all 300 to the publisher and kept only the
        # first `limit` for the offline session; the rest were dropped silently.
        kept = sorted(q for _, q in stored_seqs(store) - probe.expected)
        assert kept == list(range(limit))
    finally:
        broker.stop()
