"""Ingest's decoder: each kind of bad input gets its stable code; good input the SPEC §5 schema."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ingest.decode import MAX_PAYLOAD_BYTES, DeadLetter, Decoded, Decoder, TimeWindow
from tests.helpers import station_registry

NOW = 1_761_955_200_000
ST = "st-x"
REG = station_registry(ST)


def decode(topic: str, payload: object, now: int = NOW) -> Decoded | DeadLetter:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Decoder(
        REG, TimeWindow(max_age=timedelta(days=30), max_ahead=timedelta(minutes=5))
    ).decode(topic, raw, now)


def disp(**over: object) -> dict[str, object]:
    r: dict[str, object] = {
        "v": 1,
        "kind": "water_dispenser",
        "ts": NOW,
        "seq": 7,
        "data": {"water_l_total": 1532, "energy_kwh_total": 211.4, "temp_c": 92.5, "heating": True},
    }
    r.update(over)
    return r


def test_reading_becomes_one_point_per_spec() -> None:
    out = decode(f"stations/{ST}/{ST}-disp/telemetry", disp())
    assert isinstance(out, Decoded)
    # Integral float registers stay floats (1532.0), so field types never conflict.
    assert out.lines == [
        f"water_dispenser,device={ST}-disp,station={ST} "
        f"water_l_total=1532.0,energy_kwh_total=211.4,temp_c=92.5,heating=true,seq=7i {NOW}"
    ]


def test_array_becomes_points_in_order() -> None:
    out = decode(f"stations/{ST}/{ST}-disp/telemetry", [disp(seq=1), disp(seq=2, ts=NOW + 1000)])
    assert isinstance(out, Decoded)
    assert out.readings == 2
    assert [line.split()[-1] for line in out.lines] == [str(NOW), str(NOW + 1000)]


def test_status_and_event() -> None:
    out = decode(
        f"stations/{ST}/{ST}-gw/status", {"v": 1, "ts": NOW, "state": "offline", "agent": "a/1"}
    )
    assert isinstance(out, Decoded)
    assert out.lines == [f'device_status,device={ST}-gw,station={ST} online=0i,agent="a/1" {NOW}']
    out = decode(
        f"stations/{ST}/{ST}-disp/event",
        {"v": 1, "ts": NOW, "seq": 3, "type": "fault", "detail": {"code": "E2", "说明": "干烧"}},
    )
    assert isinstance(out, Decoded)
    assert out.lines == [
        f'event,device={ST}-disp,station={ST},type=fault seq=3i,detail="{{\\"code\\": \\"E2\\", '
        f'\\"说明\\": \\"干烧\\"}}" {NOW}'
    ]


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("stations/st-x", disp(), "bad_topic"),
        (f"stations/{ST}/{ST}-disp/telemetry", b"\xff\xfe", "bad_json"),
        (f"stations/{ST}/{ST}-disp/telemetry", b"{", "bad_json"),
        (f"stations/{ST}/{ST}-disp/telemetry", disp(seq="x"), "schema"),
        (f"stations/{ST}/ghost/telemetry", disp(), "unknown_device"),
        (f"stations/other/{ST}-disp/telemetry", disp(), "wrong_station"),
        (f"stations/{ST}/{ST}-door/telemetry", disp(), "kind_mismatch"),
        (f"stations/{ST}/{ST}-disp/telemetry", disp(ts=NOW - 31 * 86_400_000), "ts_out_of_window"),
        (f"stations/{ST}/{ST}-disp/telemetry", disp(ts=NOW + 3_600_000), "ts_out_of_window"),
        (
            f"stations/{ST}/{ST}-gw/status",
            {"v": 1, "ts": NOW + 3_600_000, "state": "online", "agent": "a"},
            "ts_out_of_window",
        ),
        (f"stations/{ST}/{ST}-disp/telemetry", b"[" + b" " * MAX_PAYLOAD_BYTES + b"]", "oversized"),
    ],
)
def test_bad_input_gets_its_code(topic: str, payload: object, code: str) -> None:
    out = decode(topic, payload)
    assert isinstance(out, DeadLetter)
    assert out.code == code
    assert out.reason


def test_one_bad_reading_in_an_array_refuses_only_itself() -> None:
    readings = [disp(seq=n, ts=NOW - 1000 * n) for n in range(100)]
    readings[3]["ts"] = NOW + 2 * 3_600_000  # a clock that ran ahead
    readings[50] = disp(seq=50, data={"water_l_total": -1})  # breaks the schema
    out = decode(f"stations/{ST}/{ST}-disp/telemetry", readings)
    assert isinstance(out, Decoded)
    assert out.readings == 98
    assert len(out.lines) == 98
    assert not any(f"seq={n}i " in line for line in out.lines for n in (3, 50))
    assert out.refused is not None
    assert out.refused.code == "ts_out_of_window"  # the first refused reading's
    assert out.refused.reason.startswith("2 of 100 readings refused: [3] ts ")
    assert "[50] data.water_l_total" in out.refused.reason


def test_an_array_of_only_bad_readings_is_one_dead_letter_naming_each() -> None:
    out = decode(
        f"stations/{ST}/{ST}-disp/telemetry",
        [disp(ts=NOW + 3_600_000 + n) for n in range(7)],
    )
    assert isinstance(out, DeadLetter)
    assert out.code == "ts_out_of_window"
    assert "7 of 7 readings refused" in out.reason
    assert "(+2 more)" in out.reason


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2]",  # not readings
        b'[{"v": 1}, NaN]',  # not JSON as the contract reads it
    ],
)
def test_an_array_that_is_not_readings_is_refused_whole(payload: bytes) -> None:
    out = decode(f"stations/{ST}/{ST}-disp/telemetry", payload)
    assert isinstance(out, DeadLetter)
    assert out.code in ("schema", "bad_json")


def test_event_types_outside_the_known_ones_share_one_tag_value() -> None:
    lines = []
    for n in range(50):
        out = decode(
            f"stations/{ST}/{ST}-disp/event",
            {"v": 1, "ts": NOW, "seq": n, "type": f"made_up_{n}", "detail": {}},
        )
        assert isinstance(out, Decoded)
        lines += out.lines
    # One series for all of them: the device's word is a field, not a tag.
    assert {line.split(" ")[0] for line in lines} == {
        f"event,device={ST}-disp,station={ST},type=other"
    }
    assert 'event_type="made_up_7"' in lines[7]
    known = decode(
        f"stations/{ST}/{ST}-disp/event", {"v": 1, "ts": NOW, "seq": 1, "type": "unreachable"}
    )
    assert isinstance(known, Decoded)
    assert known.lines[0].startswith(f"event,device={ST}-disp,station={ST},type=unreachable ")
    assert "event_type" not in known.lines[0]
