"""Partitioned ingest: N workers split the stations by a stable hash, and lose nothing.

Each partition worker subscribes to its own stations (plain subscriptions of
a persistent session, which Mosquitto restores after a restart, unlike the
shared subscriptions of `--group`). On real servers: a broker restart under
load with two partitions, and `waystation ingest --workers 2` supervising
its children through a kill -9 of one of them and of itself.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from ingest.partition import Partition, partition_of
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

DEVICES = 3
DRAIN_S = 90.0
# crc32(b"st-0000") % 3 ... crc32(b"st-0005") % 3, from a crc32 outside this code base.
PUBLISHED = [0, 2, 1, 2, 0, 2]


def _stations(uid: str, count: int = 2) -> list[str]:
    """Stations of this test, at least one in each of `count` partitions."""
    names: list[str] = []
    n = 0
    while len({partition_of(s, count) for s in names}) < count or len(names) < 4:
        names.append(f"pt{n}-{uid}")
        n += 1
    return names


def _registry(stations: list[str]) -> dict[str, object]:
    merged: dict[str, object] = {}
    for s in stations:
        one = door_counter_registry(s, DEVICES)["stations"]
        assert isinstance(one, dict)
        merged |= one
    return {"version": 1, "stations": merged}


def _loads(settings: MqttSettings, stations: list[str], uid: str, each: int) -> list[LoadPublisher]:
    return [
        LoadPublisher(settings, s, DEVICES, each, each / 4, f"{uid}-{n}").start()
        for n, s in enumerate(stations)
    ]


def _expected(loads: list[LoadPublisher]) -> set[tuple[str, int]]:
    return set().union(*(load.expected for load in loads))


def test_the_hash_is_stable_and_every_station_is_in_exactly_one_partition() -> None:
    # CRC-32 of the id (IEEE 802.3, as zlib and every language's crc32 compute it): the
    # same in every process, host and Python version, unlike the salted hash().
    assert [partition_of(f"st-{n:04d}", 3) for n in range(6)] == PUBLISHED
    registry = parse_registry(_registry([f"st-{n}" for n in range(40)]))
    parts = [Partition(i, 3).stations(registry) for i in range(3)]
    assert sorted(s for part in parts for s in part) == sorted(registry.stations)
    assert all(parts), "40 stations in 3 partitions: none empty"
    assert Partition(1, 3).filters(registry)[0].endswith("/+/+")


@pytest.mark.parametrize("text", ["2/2", "-1/2", "1", "a/b", "1/0", ""])
def test_a_bad_partition_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="partition"):
        Partition.parse(text)


@pytest.mark.integration
def test_broker_restart_under_load_with_two_partitions_loses_nothing(
    own_mosquitto: MosquittoServer, store: InfluxStore, uid: str
) -> None:
    stations = _stations(uid)
    registry = parse_registry(_registry(stations))
    settings = MqttSettings.from_url(own_mosquitto.url)
    workers = [
        IngestWorker(
            settings,
            store,
            registry,
            IngestConfig(client_id=f"ingest-{uid}-p{i}", partition=Partition(i, 2)),
        )
        for i in range(2)
    ]
    for w in workers:
        w.start()
    try:
        assert all(w.wait_subscribed() for w in workers)
        loads = _loads(settings, stations, uid, 800)
        wait_for(
            lambda: all(w.stats.messages_written >= 100 for w in workers),
            "both partitions writing",
        )
        own_mosquitto.restart()
        wait_for(lambda: all(load.done for load in loads), "the publishers to finish", DRAIN_S)
        total = sum(load.total for load in loads)
        wait_for(lambda: stored_count(store) >= total, "every reading in InfluxDB", DRAIN_S)
        for load in loads:
            load.stop()
    finally:
        for w in workers:
            w.stop()
    assert stored_seqs(store) == _expected(loads)
    # Each worker took only its own stations.
    for i, w in enumerate(workers):
        mine = {s for s in stations if partition_of(s, 2) == i}
        assert w.subscriptions == tuple(f"stations/{s}/+/+" for s in stations if s in mine)
        assert w.stats.received > 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z")


@pytest.mark.integration
def test_workers_supervise_their_partitions_through_kill9(
    mosquitto: MosquittoServer, store: InfluxStore, uid: str, tmp_path: Path
) -> None:
    stations = _stations(uid)
    registry = write_registry(tmp_path / "stations.yaml", _registry(stations))
    proc = IngestProcess(
        mosquitto.url, store, registry, f"ingest-{uid}", stations[0], tmp_path / "ingest.log"
    )
    i = proc.args.index("--topic")
    del proc.args[i : i + 2]
    proc.args += ["--workers", "2"]
    proc.start()
    wait_for(proc.ready, "every partition subscribed", 30)
    assert proc._proc is not None
    supervisor = proc._proc.pid
    children = _children(supervisor)
    assert len(children) == 2
    loads = _loads(MqttSettings.from_url(mosquitto.url), stations, uid, 600)
    wait_for(lambda: stored_count(store) >= 300, "a first part stored")
    os.kill(children[0], signal.SIGKILL)  # one partition dies: it is restarted
    wait_for(
        lambda: proc.metrics().get("waystation_ingest_partition_restarts_total", 0) >= 1,
        "the supervisor to restart the partition",
        30,
    )
    wait_for(lambda: all(load.done for load in loads), "the publishers to finish", DRAIN_S)
    total = sum(load.total for load in loads)
    wait_for(lambda: stored_count(store) >= total, "every reading in InfluxDB", DRAIN_S)
    for load in loads:
        load.stop()
    assert stored_seqs(store) == _expected(loads)
    children = _children(supervisor)
    assert len(children) == 2
    proc.kill9()  # the supervisor itself: its children die with it
    wait_for(lambda: all(_gone(c) for c in children), "the children to die with it", 10)
