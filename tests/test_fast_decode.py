"""The fast path never accepts what the contract refuses, and writes the same lines.

Differential: every payload goes through `FastDecoder` and the pydantic
`Decoder`; when the fast path answers, its answer must equal the slow one.
Payloads are valid readings of every kind mutated towards the edges of JSON
and of the contract (booleans for numbers, floats for integers, huge and
non-finite numbers, escaped and repeated keys, RFC 3339 times, control
characters, extra fields, arrays, the window's edges).
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.decode import Decoded, Decoder, TimeWindow
from ingest.fastdecode import FastDecoder
from tests.helpers import station_registry

NOW = 1_761_955_200_000
ST = "st-x"
REG = station_registry(ST)
WINDOW = TimeWindow(max_age=timedelta(days=30), max_ahead=timedelta(minutes=5))
DEVICE = {
    "door_counter": "door",
    "water_dispenser": "disp",
    "charging_locker": "locker",
    "meter": "meter",
    "gateway": "gw",
}
VALID: dict[str, dict[str, object]] = {
    "door_counter": {"in_total": 120, "out_total": 118},
    "water_dispenser": {
        "water_l_total": 1532.25,
        "energy_kwh_total": 211.4,
        "temp_c": 92.5,
        "heating": True,
        "fault": "E1",
    },
    "charging_locker": {"slots": 12, "slots_in_use": 5, "energy_kwh_total": 88, "fault_slots": 1},
    "meter": {"energy_kwh_total": 4021.5, "power_w": 1350.0, "energy_kwh_peak_total": 7},
    "gateway": {
        "uptime_s": 3600,
        "outbox_depth": 0,
        "outbox_dropped_total": 0,
        "broker_refused_total": 2,
        "broker_refused_reason": "Not authorized (0x87)",
    },
}


class Raw(str):
    """JSON text written as it is (NaN, 1e999, ...)."""

    __slots__ = ()


TRICKY: list[object] = [
    0, 1, -1, 1.5, 1.0, -0.0, 0.1, 1e308, 5e-324, 2**31, 2**53 + 1, 2**63, 2**64, 10**30,
    True, False, None, "1", "", "x", [], {}, [1], {"a": 1}, "NaN",
    Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e999"), Raw("1E2"),
    Raw("1" + "0" * 400), Raw("1.0e0"), Raw("-0"), Raw("0.0"), Raw("1e-400"),
    "ok", "a\n", "a\r", 'q"uote', "back\\slash", "tab\t", "\x7f", "é", " ", "x" * 64,
    "x" * 65, "\u0000", "E1\n",
    "2025-11-01T08:00:00+08:00", "2025-11-01T08:00:00", "2025-11-01T00:00:00Z",
    NOW, NOW - 1, NOW + 300_000, NOW + 300_001, NOW - 30 * 86_400_000,
    NOW - 30 * 86_400_000 - 1, NOW // 1000, NOW * 1000, float(NOW), NOW + 0.5,
    12, 13, 1000, 1001, 150, 150.0001, -50, -50.0001, 64,
]  # fmt: skip


def _value(v: object, rnd: random.Random) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, dict):
        return _object(v, rnd)
    return json.dumps(v, ensure_ascii=rnd.random() < 0.5)


def _object(d: dict[str, object], rnd: random.Random) -> str:
    items = []
    for k, v in d.items():
        key = json.dumps(k)
        if rnd.random() < 0.03 and k:  # the same key, escaped
            key = f'"\\u{ord(k[0]):04x}{k[1:]}"'
        items.append(f"{key}:{_value(v, rnd)}")
        if rnd.random() < 0.02:  # a repeated key
            items.append(f"{key}:{_value(rnd.choice(TRICKY), rnd)}")
    if rnd.random() < 0.05:
        rnd.shuffle(items)
    sep = rnd.choice([",", ", ", " ,\n"]) if rnd.random() < 0.1 else ","
    return "{" + sep.join(items) + "}"


def _reading(rnd: random.Random, kind: str) -> dict[str, object]:
    data = dict(VALID[kind])
    if kind == "meter" and rnd.random() < 0.3:
        data = {"water_m3_total": 12}
    r: dict[str, object] = {
        "v": 1,
        "kind": kind,
        "ts": NOW - rnd.randrange(10**9),
        "seq": rnd.randrange(10**6),
        "data": data,
    }
    for _ in range(rnd.choice([0, 0, 1, 1, 1, 2, 3])):
        where = rnd.random()
        if where < 0.3:
            r[rnd.choice(["v", "ts", "seq", "kind", "data", "extra"])] = rnd.choice(TRICKY)
        elif where < 0.9:
            key = rnd.choice([*data, "extra", "fault", "water_m3_total", "power_w", "x"])
            data[key] = rnd.choice(TRICKY)
        elif data:
            data.pop(rnd.choice(list(data)))
    if rnd.random() < 0.1:
        r["kind"] = rnd.choice(list(VALID))
    return r


def _case(rnd: random.Random) -> tuple[str, bytes]:
    kind = rnd.choice(list(VALID))
    text = _object(_reading(rnd, kind), rnd)
    if rnd.random() < 0.15:
        n = rnd.choice([1, 2, 3])
        text = "[" + ",".join([text, *(_object(_reading(rnd, kind), rnd) for _ in range(n))]) + "]"
        if rnd.random() < 0.05:
            text = "[]"
    if rnd.random() < 0.01:
        text = " " + text
    topic = f"stations/{ST}/{ST}-{DEVICE[kind]}/telemetry"
    if rnd.random() < 0.05:
        topic = rnd.choice(
            [
                f"stations/{ST}/{ST}-door/telemetry",
                f"stations/other/{ST}-{DEVICE[kind]}/telemetry",
                f"stations/{ST}/ghost/telemetry",
                f"stations/{ST}/{ST}-{DEVICE[kind]}/status",
                f"stations/{ST}/{ST}-{DEVICE[kind]}/telemetry/x",
            ]
        )
    return topic, text.encode()


FAST = FastDecoder(REG, WINDOW)
SLOW = Decoder(REG, WINDOW)


def _same(topic: str, payload: bytes) -> bool:
    before = FAST.fast
    answer = FAST.decode(topic, payload, NOW)
    expected = SLOW.decode(topic, payload, NOW)
    assert answer == expected, (topic, payload)
    return FAST.fast > before


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_fast_path_answers_as_the_contract_does(rnd: random.Random) -> None:
    _same(*_case(rnd))


def test_the_fast_path_takes_the_common_case_and_leaves_the_rest() -> None:
    rnd = random.Random(17)
    took = sum(_same(*_case(rnd)) for _ in range(5000))
    # Most generated readings are mutated into something doubtful; a good share is plain.
    assert 500 < took < 4500


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("water_dispenser", {**VALID["water_dispenser"], "fault": "E1\n"}),  # Python's `$` trap
        ("door_counter", {"in_total": 1.0, "out_total": 2}),  # float for an int
        ("door_counter", {"in_total": 2**64, "out_total": 2}),  # past int64
        ("meter", {"energy_kwh_total": 10**30}),  # a huge integer for a float
        ("meter", {"energy_kwh_total": 1, "water_m3_total": 2}),  # two registers
        ("charging_locker", {**VALID["charging_locker"], "slots_in_use": 13}),
        ("gateway", {**VALID["gateway"], "broker_refused_reason": "tab\there"}),
        ("water_dispenser", {**VALID["water_dispenser"], "heating": 1}),
    ],
)
def test_edges_of_the_contract(kind: str, data: dict[str, object]) -> None:
    payload = json.dumps({"v": 1, "kind": kind, "ts": NOW, "seq": 1, "data": data}).encode()
    _same(f"stations/{ST}/{ST}-{DEVICE[kind]}/telemetry", payload)


def test_plain_readings_of_every_kind_take_the_fast_path_with_the_same_lines() -> None:
    for kind, data in VALID.items():
        payload = json.dumps({"v": 1, "kind": kind, "ts": NOW, "seq": 3, "data": data}).encode()
        fast = FastDecoder(REG, WINDOW)
        answer = fast.decode(f"stations/{ST}/{ST}-{DEVICE[kind]}/telemetry", payload, NOW)
        assert isinstance(answer, Decoded)
        assert fast.fast == 1, kind
