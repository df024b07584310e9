"""Random and mutated payloads thrown at a running worker (hypothesis).

Every generated message is known good or known bad by construction (a valid
reading, or a valid reading broken in a way the contract forbids), so the
oracle is independent of the code under test. The worker must stay up,
dead-letter every bad message with a reason, and store every good one.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import MAX_PAYLOAD_BYTES
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import MqttSpy, station_data, wait_for
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

_seq = itertools.count(1)  # unique seq (and ts offset) across all examples


@dataclass(frozen=True)
class Case:
    topic: str
    payload: bytes
    good: bool
    device: str = ""
    seq: int = -1


@dataclass
class Target:
    station: str
    registry: Registry

    def topic(self, suffix: str, channel: str = "telemetry") -> str:
        return f"stations/{self.station}/{self.station}-{suffix}/{channel}"


def _door(seq: int, ins: int, outs: int) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "door_counter",
        "ts": int(time.time() * 1000) - 60_000 + seq,
        "seq": seq,
        "data": {"in_total": ins, "out_total": outs},
    }


def _disp(seq: int, water: float, temp: float, heating: bool) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "water_dispenser",
        "ts": int(time.time() * 1000) - 60_000 + seq,
        "seq": seq,
        "data": {
            "water_l_total": water,
            "energy_kwh_total": water / 10,
            "temp_c": temp,
            "heating": heating,
        },
    }


_counts = st.integers(min_value=0, max_value=2**40)
_water = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
_temp = st.floats(min_value=-50, max_value=150, allow_nan=False, allow_infinity=False)


@st.composite
def good_reading(draw: st.DrawFn, t: Target) -> Case:
    seq = next(_seq)
    if draw(st.booleans()):
        body = _door(seq, draw(_counts), draw(_counts))
        device = f"{t.station}-door"
    else:
        body = _disp(seq, draw(_water), draw(_temp), draw(st.booleans()))
        device = f"{t.station}-disp"
    suffix = device.removeprefix(f"{t.station}-")
    return Case(t.topic(suffix), json.dumps(body).encode(), good=True, device=device, seq=seq)


_WRONG_VALUES: list[Any] = ["12", [1], {"a": 1}, None, True, 1.5, -1, "NaN"]


def _drop_field(draw: st.DrawFn, body: dict[str, Any]) -> None:
    path = draw(st.sampled_from(["v", "kind", "ts", "seq", "data", "data.in_total"]))
    target = body["data"] if path.startswith("data.") else body
    del target[path.removeprefix("data.")]


def _wrong_type(draw: st.DrawFn, body: dict[str, Any]) -> None:
    path = draw(st.sampled_from(["seq", "data.in_total", "data.out_total"]))
    target = body["data"] if path.startswith("data.") else body
    target[path.removeprefix("data.")] = draw(st.sampled_from(_WRONG_VALUES))  # all invalid


def _extra_field(draw: st.DrawFn, body: dict[str, Any]) -> None:
    body[draw(st.sampled_from(["extra", "unit"]))] = 1


def _ts_seconds(_draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["ts"] //= 1000


def _ts_future(_draw: st.DrawFn, body: dict[str, Any]) -> None:
    body["ts"] += 86_400_000


# Ways to break a valid door-counter reading's JSON object.
BODY_BREAKERS = [_drop_field, _wrong_type, _extra_field, _ts_seconds, _ts_future]


@st.composite
def broken_body(draw: st.DrawFn, t: Target) -> Case:
    body = _door(next(_seq), 10, 9)
    draw(st.sampled_from(BODY_BREAKERS))(draw, body)
    return Case(t.topic("door"), json.dumps(body).encode(), good=False)


@st.composite
def broken_message(draw: st.DrawFn, t: Target) -> Case:
    """A valid reading sent wrongly, or bytes that are no reading at all."""
    raw = json.dumps(_door(next(_seq), 10, 9))
    door = t.topic("door")
    # The cut is drawn independently of the payload's length, which varies with
    # the global seq counter: hypothesis needs draws that do not depend on state.
    cut = draw(st.integers(min_value=0, max_value=10**6)) % len(raw)
    options = {
        "random_bytes": (door, draw(st.binary(max_size=200))),
        "nan": (door, raw.replace('"in_total": 10', '"in_total": NaN').encode()),
        "truncated": (door, raw[:cut].encode()),
        "unknown_device": (t.topic("ghost"), raw.encode()),
        "kind_mismatch": (t.topic("disp"), raw.encode()),
        # The other station's door counter, published under this station.
        "wrong_station": (f"stations/{t.station}/{t.station}x-door/telemetry", raw.encode()),
        "oversized": (door, b"[" + b" " * MAX_PAYLOAD_BYTES + b"]"),
        "not_utf8": (door, raw.encode("utf-16")),
        "wrong_channel": (t.topic("door", channel="status"), raw.encode()),
        "empty_array": (door, b"[]"),
    }
    topic, payload = options[draw(st.sampled_from(sorted(options)))]
    return Case(topic, payload, good=False)


@pytest.fixture
def running(
    mqtt_settings: MqttSettings, store: InfluxStore, uid: str, tmp_path: Path
) -> Iterator[tuple[IngestWorker, MqttSpy, Target]]:
    station = f"fz-{uid}"
    # A second station, whose devices must not publish under the first.
    registry = parse_registry(
        {"version": 1, "stations": station_data(station) | station_data(f"{station}x")}
    )
    target = Target(station, registry)
    config = IngestConfig(
        client_id=f"ingest-{uid}",
        topic_filter=f"stations/{station}/+/+",
        deadletter_path=tmp_path / "dead.jsonl",
    )
    with (
        IngestWorker(mqtt_settings, store, target.registry, config) as worker,
        MqttSpy(mqtt_settings, f"fuzz-{uid}", []) as spy,
    ):
        assert worker.wait_subscribed()
        yield worker, spy, target


def _stored(store: InfluxStore) -> set[tuple[str, int]]:
    out = set()
    for m in ("door_counter", "water_dispenser"):
        for series in store.query(f'SELECT "seq" FROM "{m}" GROUP BY "device"'):
            out |= {(series.tags["device"], row[1]) for row in series.values}
    return out


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_worker_survives_anything_and_sorts_good_from_bad(
    running: tuple[IngestWorker, MqttSpy, Target], store: InfluxStore, data: st.DataObject
) -> None:
    worker, spy, target = running
    cases = data.draw(
        st.lists(
            st.one_of(good_reading(target), broken_body(target), broken_message(target)),
            min_size=1,
            max_size=40,
        )
    )
    received_before = worker.stats.received
    dead_before = sum(worker.deadletters.counts.values())
    stored_before = _stored(store)
    for case in cases:
        spy.publish(case.topic, case.payload)
    good = {(c.device, c.seq) for c in cases if c.good}
    bad = sum(not c.good for c in cases)

    def dead() -> int:
        return sum(worker.deadletters.counts.values()) - dead_before

    wait_for(lambda: dead() >= bad, "every bad message dead-lettered")
    wait_for(lambda: _stored(store) >= stored_before | good, "every good reading stored")
    wait_for(lambda: worker.stats.acked >= received_before + len(cases), "every message acked")

    assert worker.running
    assert _stored(store) == stored_before | good  # nothing bad stored
    assert dead() == bad
    path = worker.config.deadletter_path
    assert path is not None
    letters = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    assert len(letters) == sum(worker.deadletters.counts.values())
    assert all(letter["code"] and letter["reason"] for letter in letters)
