"""The wire contract: what is accepted, and that every rejection says why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from waystation.contract import (
    MAX_BATCH_READINGS,
    STATIONS_FILTER,
    AlertItem,
    AlertsMessage,
    Channel,
    ContractError,
    DeadLetterCode,
    EventType,
    Kind,
    StatusState,
    alerts_json,
    alerts_topic,
    deadletter_json,
    deadletter_topic,
    device_topic,
    event_json,
    parse_event,
    parse_readings,
    parse_status,
    parse_topic,
    reading_json,
    readings_array,
    station_filter,
    status_json,
)

TS = 1_761_955_200_000  # 2025-11-01T00:00:00Z

VALID_DATA: dict[str, dict[str, Any]] = {
    "door_counter": {"in_total": 120, "out_total": 118},
    "water_dispenser": {
        "water_l_total": 1532.25,
        "energy_kwh_total": 211.4,
        "temp_c": 92.5,
        "heating": True,
        "fault": None,
    },
    "charging_locker": {"slots": 12, "slots_in_use": 5, "energy_kwh_total": 88.0, "fault_slots": 1},
    "meter": {"energy_kwh_total": 4021.5, "power_w": 1350.0},
    "gateway": {"uptime_s": 3600, "outbox_depth": 0, "outbox_dropped_total": 0},
}


def reading(kind: str = "water_dispenser", **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "v": 1,
        "kind": kind,
        "ts": TS,
        "seq": 4711,
        "data": dict(VALID_DATA[kind]),
    }
    data_over = over.pop("data", None)
    if data_over is not None:
        r["data"].update(data_over)
    r.update(over)
    return r


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize("kind", list(VALID_DATA))
def test_every_kind_is_accepted(kind: str) -> None:
    [r] = parse_readings(dumps(reading(kind)))
    assert r.kind == Kind(kind)
    assert r.ts == TS
    assert r.seq == 4711


def test_water_meter_and_integer_for_float_are_accepted() -> None:
    [r] = parse_readings(
        dumps(
            reading("meter", data={"energy_kwh_total": None, "power_w": None, "water_m3_total": 12})
        )
    )
    assert r.data.water_m3_total == 12.0  # type: ignore[union-attr]
    assert isinstance(r.data.water_m3_total, float)  # type: ignore[union-attr]


def test_array_of_one_device_is_accepted_in_order() -> None:
    payload = dumps([reading(seq=n, ts=TS + n * 60_000) for n in range(1, 6)])
    readings = parse_readings(payload)
    assert [r.seq for r in readings] == [1, 2, 3, 4, 5]


def test_rfc3339_timestamp_with_offset_is_converted_to_epoch_ms() -> None:
    [r] = parse_readings(dumps(reading(ts="2025-11-01T08:00:00+08:00")))
    assert r.ts == TS


@pytest.mark.parametrize(
    ("payload", "code", "mentions"),
    [
        (b"{not json", "bad_json", "JSON"),
        (dumps(reading(extra=1)), "schema", "extra"),
        (dumps(reading(data={"colour": "red"})), "schema", "data.colour"),
        (dumps(reading(v=2)), "schema", "v"),
        (dumps({**reading(), "kind": "toaster"}), "schema", "toaster"),
        (dumps(reading(seq=-1)), "schema", "seq"),
        (dumps(reading(seq=1.5)), "schema", "seq"),
        (dumps(reading(ts=TS // 1000)), "schema", "seconds"),  # seconds, not ms
        (dumps(reading(ts=0)), "schema", "clock not synchronised"),  # booted in 1970
        (dumps(reading(ts="2025-11-01T08:00:00")), "schema", "offset"),
        (dumps(reading(ts=True)), "schema", "boolean"),
        (dumps(reading(data={"temp_c": "92.5"})), "schema", "data.temp_c"),
        (dumps(reading(data={"heating": 1})), "schema", "data.heating"),
        (dumps(reading(data={"temp_c": 400})), "schema", "data.temp_c"),
        (dumps(reading(data={"water_l_total": -1})), "schema", "data.water_l_total"),
        (dumps(reading("door_counter", data={"in_total": 1.5})), "schema", "data.in_total"),
        (dumps(reading("door_counter", data={"in_total": True})), "schema", "data.in_total"),
        (dumps(reading("charging_locker", data={"slots_in_use": 13})), "schema", "exceeds slots"),
        (dumps(reading("meter", data={"water_m3_total": 1.0})), "schema", "exactly one"),
        (dumps(reading("meter", data={"energy_kwh_total": None})), "schema", "exactly one"),
        (
            b'{"v":1,"kind":"meter","ts":1761955200000,"seq":1,"data":{"energy_kwh_total":NaN}}',
            "schema",
            "finite",
        ),
        (
            b'{"v":1,"kind":"meter","ts":1761955200000,"seq":1,"data":{"energy_kwh_total":1e999}}',
            "schema",
            "finite",
        ),
        (b"[]", "schema", "at least 1"),
        (b'"text"', "schema", "object"),
        (dumps([reading(), reading("door_counter")]), "schema", "mixes kinds"),
    ],
)
def test_bad_readings_are_refused_with_a_reason(payload: bytes, code: str, mentions: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_readings(payload)
    assert info.value.code == code
    assert mentions.lower() in info.value.reason.lower()


def test_replay_array_has_a_bound() -> None:
    too_many = dumps([reading(seq=n) for n in range(MAX_BATCH_READINGS + 1)])
    with pytest.raises(ContractError, match="at most 1000"):
        parse_readings(too_many)


def test_status_and_event() -> None:
    status = parse_status(
        dumps({"v": 1, "ts": TS, "state": "offline", "agent": "waystation-edge/0.1"})
    )
    assert status.state == "offline"
    event = parse_event(
        dumps({"v": 1, "ts": TS, "seq": 3, "type": "fault", "detail": {"code": "E1"}})
    )
    assert (event.type, event.detail) == ("fault", {"code": "E1"})
    with pytest.raises(ContractError, match="state"):
        parse_status(dumps({"v": 1, "ts": TS, "state": "sleepy", "agent": "x"}))
    with pytest.raises(ContractError, match="type"):
        parse_event(dumps({"v": 1, "ts": TS, "seq": 3, "type": "Fault Now"}))


def test_topics() -> None:
    t = parse_topic("stations/dachuan-rider-01/disp-01/telemetry")
    assert (t.station, t.device, t.channel) == ("dachuan-rider-01", "disp-01", Channel.TELEMETRY)
    assert str(t) == "stations/dachuan-rider-01/disp-01/telemetry"
    for bad in (
        "stations/a/b",
        "station/a/b/telemetry",
        "stations/A/b/telemetry",
        "stations/a/b/metrics",
        "stations/a/-b/status",
        "stations/a/b/c/telemetry",
    ):
        with pytest.raises(ContractError) as info:
            parse_topic(bad)
        assert info.value.code == "bad_topic"


def test_what_waystation_writes_is_what_it_accepts() -> None:
    """Every envelope built by the contract parses back with the contract's own parser."""
    one = reading_json(Kind.METER, TS, 7, {"energy_kwh_total": 4021.5})
    [r] = parse_readings(one)
    assert (r.kind, r.ts, r.seq) == ("meter", TS, 7)
    assert r.data.model_dump(exclude_none=True) == {"energy_kwh_total": 4021.5}
    replay = readings_array(
        [one, reading_json("meter", TS + 60_000, 8, {"energy_kwh_total": 4022})]
    )
    assert [r.seq for r in parse_readings(replay)] == [7, 8]
    assert readings_array([one]) == one  # a single reading is sent as itself

    status = parse_status(status_json(StatusState.OFFLINE, TS, "waystation-edge/0.1"))
    assert (status.state, status.ts, status.agent) == ("offline", TS, "waystation-edge/0.1")
    event = parse_event(event_json(TS, 3, EventType.UNREACHABLE, {"reason": "timed out"}))
    assert (event.type, event.seq, event.detail) == ("unreachable", 3, {"reason": "timed out"})

    item = AlertItem(key="k", rule="agent_offline", device="gw", severity="critical",
                     state="firing", since=TS, resolved=None, detail="", text="网关离线")  # fmt: skip
    alerts = json.loads(alerts_json("st-1", "达川·1 号", [item]))
    assert alerts["v"] == 1
    assert alerts["station_name"] == "达川·1 号"  # not escaped: operators read it
    assert AlertsMessage.model_validate(alerts).alerts == [item]

    letter = json.loads(deadletter_json(
        code=DeadLetterCode.SCHEMA, reason="why", topic="t", received_ms=TS, payload_bytes=2,
        payload_sha256="00", payload="{}", payload_b64=None, truncated=False,
    ))  # fmt: skip
    assert letter["code"] == "schema"
    assert letter["payload"] == "{}"


def test_topics_are_built_as_they_are_parsed() -> None:
    topic = device_topic("st-1", "st-1-door", Channel.STATUS)
    assert topic == "stations/st-1/st-1-door/status"
    assert str(parse_topic(topic)) == topic
    assert STATIONS_FILTER == "stations/+/+/+"
    assert station_filter("st-1") == "stations/st-1/#"
    assert station_filter("st-1", "st-1-door") == "stations/st-1/st-1-door/#"
    assert deadletter_topic(DeadLetterCode.BAD_JSON) == "waystation/deadletter/bad_json"
    assert alerts_topic("st-1", "station_down") == "alerts/st-1/station_down"
    assert alerts_topic("st-1", "station_down", "ops/alerts") == "ops/alerts/st-1/station_down"
