"""The decoder and the dead-letter path are total: no input makes them raise or overflow.

Hostile keys, kinds, topics and payloads (every control character, lone
surrogates, invalid UTF-8, deep nesting, megabytes) go through the decoder
and then through everything a dead letter becomes: the letter published to
the broker (capped), the letter filed (whole), the `deadletter` point. The
lines the decoder and the tally produce are then written to a real InfluxDB,
which must take every one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.deadletter import (
    EXCERPT_BYTES,
    MAX_LETTER_BYTES,
    DeadLetterSink,
    DeadLetterTally,
    letter_json,
)
from ingest.decode import DeadLetter, Decoded, Decoder, TimeWindow
from tests.helpers import station_registry
from waystation.contract import DeadLetterCode
from waystation.store import InfluxStore

NOW = 1_761_955_200_000
ST = "st-p"
REG = station_registry(ST)
DECODER = Decoder(REG, TimeWindow())

# Every C0 control, DEL, C1's NEL, the Unicode line separators, lone surrogates,
# backslash and quote: what breaks line protocol, JSON or UTF-8 when not handled.
_NASTY = [chr(c) for c in range(0x20)] + ["\x7f", "\x85", "\u2028", "\u2029", "\ud800", "\udfff",
                                          "\\", '"', "=", ",", " ", "…", "驿"]  # fmt: skip
nasty_text = st.lists(
    st.one_of(st.sampled_from(_NASTY), st.characters(exclude_categories=())), max_size=30
).map("".join)


def _door(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "kind": "door_counter", "ts": NOW, "seq": 1,
                            "data": {"in_total": 1, "out_total": 1}}  # fmt: skip
    body.update(over)
    return body


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def hostile_json(draw: st.DrawFn) -> bytes:
    """A reading, status or event with one hostile part, serialised one of several ways."""
    text = draw(nasty_text)
    body = draw(
        st.sampled_from(
            [
                _door(data={"in_total": 1, "out_total": 1, text: 1}),  # a key
                _door(kind=text),  # a kind
                _door(data={"in_total": 1, "out_total": 1, "x": _nested(draw(st.integers(0, 300)))}),
                {"v": 1, "ts": NOW, "state": "online", "agent": text or "a"},  # status
                {"v": 1, "ts": NOW, "seq": 1, "type": "fault", "detail": {text: text}},  # event
                {"v": 1, "ts": NOW, "seq": 1, "type": text, "detail": {}},
                {"v": 1, "ts": NOW, "seq": 1, "type": "fault",
                 "detail": {"deep": _nested(draw(st.integers(0, 300)))}},
                [_door(seq=1), _door(seq=2, data={text: text})],
            ]
        )
    )  # fmt: skip
    raw = json.dumps(body, ensure_ascii=draw(st.booleans()))
    # Lone surrogates either escaped (\ud800, valid JSON text) or raw (invalid UTF-8).
    return raw.encode("utf-8", "surrogatepass")


def _repeated(char: str, n: int) -> bytes:
    return char.encode("utf-8", "surrogatepass") * n


payloads = st.one_of(
    hostile_json(),
    st.binary(max_size=2000),  # mostly invalid UTF-8
    st.builds(_repeated, st.sampled_from(_NASTY), st.integers(0, 300_000)),
)

_CHANNELS = ["telemetry", "status", "event"]
topics = st.one_of(
    st.builds(lambda d, c: f"stations/{ST}/{ST}-{d}/{c}",
              st.sampled_from(["door", "disp", "gw", "meter"]), st.sampled_from(_CHANNELS)),
    st.builds(lambda t, c: f"stations/{ST}/{t}/{c}", nasty_text, st.sampled_from(_CHANNELS)),
    nasty_text,
)  # fmt: skip


class _Broker:
    """Stands in for paho: keeps what would go out, as paho would encode it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        assert qos == 1
        self.sent.append((topic, payload))


def _recovered(letter: dict[str, Any]) -> bytes:
    if letter["payload"] is not None:
        return str(letter["payload"]).encode("utf-8")
    return base64.b64decode(letter["payload_b64"])


def check_dead_letter(dead: DeadLetter, topic: str, payload: bytes, tmp: Path) -> list[str]:
    """Everything a dead letter becomes is bounded and well-formed; returns its point."""
    published = letter_json(
        dead.code, dead.reason, topic, payload, NOW, excerpt_bytes=EXCERPT_BYTES
    )
    assert len(published) <= MAX_LETTER_BYTES
    capped = json.loads(published.decode("utf-8"))
    assert capped["payload_bytes"] == len(payload)
    assert capped["payload_sha256"] == hashlib.sha256(payload).hexdigest()
    assert payload.startswith(_recovered(capped))
    assert capped["truncated"] == (len(_recovered(capped)) < len(payload))
    filed = json.loads(letter_json(dead.code, dead.reason, topic, payload, NOW, excerpt_bytes=None))
    assert _recovered(filed) == payload
    assert not filed["truncated"]

    broker, path = _Broker(), tmp / "dead.jsonl"
    DeadLetterSink(broker, path).record(dead.code, dead.reason, topic, payload, NOW)
    [(sent_topic, sent)] = broker.sent
    assert sent_topic == f"waystation/deadletter/{dead.code}"
    assert len(sent) <= MAX_LETTER_BYTES
    assert _recovered(json.loads(path.read_bytes().splitlines()[-1])) == payload

    tally = DeadLetterTally("ingest-1")
    tally.add(dead.code, topic, dead.reason)
    lines = tally.take_lines(NOW)
    assert len(lines) == 1
    return lines


def decode_anything(topic: str, payload: bytes, tmp: Path) -> list[str]:
    """Decode; return the lines that would be written (readings, or the dead letter's point)."""
    result = DECODER.decode(topic, payload, NOW)
    if isinstance(result, DeadLetter):
        lines = check_dead_letter(result, topic, payload, tmp)
    else:
        assert isinstance(result, Decoded)
        lines = result.lines
    for line in lines:
        assert "\n" not in line
        assert "\r" not in line
        line.encode("utf-8")  # strict: no lone surrogate reaches the database
    return lines


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, payload=payloads)
def test_decoder_and_dead_letters_never_raise_and_stay_bounded(
    tmp_path_factory: pytest.TempPathFactory, topic: str, payload: bytes
) -> None:
    decode_anything(topic, payload, tmp_path_factory.mktemp("dl"))


@pytest.mark.parametrize(
    "payload",
    [
        b"\x01" * 200_000,  # each control character escapes to six bytes in JSON
        bytes(range(256)) * 3200,  # 800 KB of binary: base64 in the letter
        b"\x00\xff" * 5 * 1024 * 1024,  # 10 MB
        json.dumps(_door(data={"x": "\u2028" * 2_000_000})).encode(),  # 6 MB of UTF-8 separators
        b"[" * 1_000_000 + b"]" * 1_000_000,  # deep nesting, 2 MB
    ],
    ids=["control-200k", "binary-800k", "binary-10m", "separators-6m", "nesting-2m"],
)
def test_megabytes_make_a_capped_letter_and_a_whole_file_entry(
    tmp_path: Path, payload: bytes
) -> None:
    result = DECODER.decode(f"stations/{ST}/{ST}-door/telemetry", payload, NOW)
    assert isinstance(result, DeadLetter)
    assert result.code == "oversized" or len(payload) <= 512 * 1024
    check_dead_letter(result, f"stations/{ST}/{ST}-door/telemetry", payload, tmp_path)


def test_the_poison_of_issue_12_is_a_dead_letter_with_a_safe_point(tmp_path: Path) -> None:
    key = b'{"v":1,"kind":"door_counter","ts":%d,"seq":1,' % NOW
    for payload in (
        key + b'"data":{"in_total":1,"out_total":1,"x\\ny":1}}',
        b'{"v":1,"kind":"door\\ncounter","ts":%d,"seq":1,"data":{}}' % NOW,
    ):
        [line] = decode_anything(f"stations/{ST}/{ST}-door/telemetry", payload, tmp_path)
        assert "\\x0a" in line  # the line break, quoted as an escape


@pytest.mark.integration
@settings(
    max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(topic=topics, payload=payloads)
def test_influxdb_takes_every_line_the_decoder_and_the_tally_make(
    store: InfluxStore, tmp_path_factory: pytest.TempPathFactory, topic: str, payload: bytes
) -> None:
    store.write_lines(decode_anything(topic, payload, tmp_path_factory.mktemp("dl")))


class _RefusingBroker:
    """A publisher that fails: the connection is gone, paho raises, whatever."""

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        raise OSError(f"cannot publish {len(payload)} bytes to {topic} (qos {qos})")


def test_a_letter_the_broker_cannot_take_is_still_filed(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    sink = DeadLetterSink(_RefusingBroker(), path)
    for n in range(3):
        sink.record(
            DeadLetterCode.BAD_JSON,
            "not JSON",
            f"stations/{ST}/{ST}-door/telemetry",
            b"{%d" % n,
            NOW,
        )
    assert [json.loads(x)["payload"] for x in path.read_text().splitlines()] == ["{0", "{1", "{2"]
    assert sink.counts == {"bad_json": 3}


def test_a_file_that_cannot_be_written_still_publishes(tmp_path: Path) -> None:
    broker = _Broker()
    sink = DeadLetterSink(broker, tmp_path / "no-such-dir" / "dead.jsonl")
    sink.record(DeadLetterCode.SCHEMA, "why", f"stations/{ST}/{ST}-door/telemetry", b"{}", NOW)
    assert len(broker.sent) == 1
    assert sink.counts == {"schema": 1}
