"""The socket engine's codec, without a broker: every split of the stream, every odd length."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waystation.mqttwire import (
    Connect,
    Parser,
    ProtocolError,
    Received,
    connack,
    connect_packet,
    puback,
    puback_in,
    pubacks,
    publish_packet,
    suback,
    subscribe_packet,
)


def _stream(msgs: list[tuple[str, bytes, int, int]], *, v5: bool) -> bytes:
    return b"".join(publish_packet(t, p, qos=q, retain=False, pid=m, v5=v5) for t, p, m, q in msgs)


messages = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t),
        st.binary(max_size=300),
        st.integers(1, 65535),
        st.sampled_from([0, 1]),
    ),
    max_size=20,
)


@settings(max_examples=100, deadline=None)
@given(messages, st.booleans(), st.data())
def test_any_split_of_the_stream_gives_the_same_packets(
    msgs: list[tuple[str, bytes, int, int]], v5: bool, data: st.DataObject
) -> None:
    stream = _stream(msgs, v5=v5)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    parser = Parser(v5=v5)
    got: list[Received] = []
    start = 0
    for cut in [*cuts, len(stream)]:
        publishes, controls = parser.feed(stream[start:cut])
        got += publishes
        assert not controls
        start = cut
    assert [(r.topic, r.payload, r.mid if r.qos else 0, r.qos) for r in got] == [
        (t, p, m if q else 0, q) for t, p, m, q in msgs
    ]


def test_v5_publish_properties_are_skipped() -> None:
    props = b"\x01\x01" + b"\x03" + struct.pack(">H", 10) + b"text/plain"  # format, content type
    body = struct.pack(">H", 3) + b"a/b" + struct.pack(">H", 7) + bytes([len(props)]) + props
    packet = bytes([0x32, len(body) + 2]) + body + b"hi"
    [msg], _ = Parser(v5=True).feed(packet)
    assert msg == Received("a/b", b"hi", 7, 1, retain=False)


def test_a_packet_larger_than_the_limit_is_refused_before_it_arrives() -> None:
    big = publish_packet("t", b"x" * 5000, qos=1, retain=False, pid=1, v5=False)
    with pytest.raises(ProtocolError, match="exceeds 4096"):
        Parser(v5=False, max_packet_bytes=4096).feed(big[:10])


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\xff\xff\xff\xff\x01",  # a remaining length of five bytes
        b"\x00\x00",  # packet type 0
        b"\x34\x05\x00\x01tab",  # QoS 2
        b"\x36\x05\x00\x01tab",  # QoS 3
        b"\x30\x04\x00\x09ab",  # a topic longer than the packet
        b"\x30\x03\x00\x01\xff",  # a topic that is not UTF-8
    ],
)
def test_malformed_input_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        Parser(v5=False).feed(data)


def test_control_packets() -> None:
    parser = Parser(v5=True)
    _, controls = parser.feed(b"\x20\x03\x01\x00\x00" + b"\x90\x06\x00\x05\x00\x01\x87\x80")
    assert connack(controls[0].body) == (True, 0)
    assert suback(controls[1].body, v5=True) == (5, [1, 0x87, 0x80])
    assert suback(b"\x00\x05\x01\x80", v5=False) == (5, [1, 0x80])
    assert puback_in(b"\x00\x07") == (7, 0)
    assert puback_in(b"\x00\x07\x10\x00") == (7, 0x10)


def test_acknowledgements_are_four_bytes_each_in_one_write() -> None:
    assert puback(258) == b"\x40\x02\x01\x02"
    assert pubacks([1, 65535]) == b"\x40\x02\x00\x01\x40\x02\xff\xff"


def test_connect_and_subscribe_bytes() -> None:
    v5 = connect_packet(
        Connect(
            client_id="c",
            v5=True,
            keepalive_s=15,
            clean_start=False,
            session_expiry_s=60,
            receive_maximum=100,
            username="u",
            password="p",  # noqa: S106 - a test value
            will_topic="w",
            will_payload=b"gone",
            will_qos=1,
            will_retain=True,
        )
    )
    assert v5[0] == 0x10
    assert v5[2:9] == b"\x00\x04MQTT\x05"
    assert v5[9] == 0x80 | 0x40 | 0x20 | 0x08 | 0x04  # user, password, will retain, QoS 1, will
    assert v5[12:21] == b"\x08\x11\x00\x00\x00\x3c\x21\x00\x64"  # expiry 60, receive max 100
    v311 = connect_packet(Connect(client_id="c", v5=False, keepalive_s=15, clean_start=True))
    assert v311 == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x0f\x00\x01c"
    assert (
        subscribe_packet(3, ["a/+", "b"], v5=False)
        == b"\x82\x0c\x00\x03\x00\x03a/+\x01\x00\x01b\x01"
    )
