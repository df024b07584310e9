"""DL/T 645-2007 frames, checked byte by byte against the standard's layout."""

from __future__ import annotations

import pytest

from edge.drivers.dlt645.frame import (
    FrameError,
    MeterError,
    bcd_kwh,
    encode_address,
    frame_length,
    parse_read_response,
    read_request,
)

ADDR = encode_address("123456789012")
DI = 0x00010000


def answer(address: bytes, control: int, data: bytes) -> bytes:
    body = bytes([0x68]) + address + bytes([0x68, control, len(data)])
    body += bytes((b + 0x33) & 0xFF for b in data)
    return b"\xfe\xfe" + body + bytes([sum(body) & 0xFF, 0x16])


def test_address_is_sent_lowest_byte_first() -> None:
    assert bytes([0x12, 0x90, 0x78, 0x56, 0x34, 0x12]) == ADDR
    with pytest.raises(ValueError, match="12 BCD digits"):
        encode_address("12345")


def test_read_request_layout() -> None:
    frame = read_request(ADDR, DI)
    # wake-up, 68, address, 68, C=11, L=4, DI 00 00 01 00 each +33, CS, 16
    assert frame.hex(" ") == (
        f"fe fe fe fe 68 12 90 78 56 34 12 68 11 04 33 33 34 33 {sum(frame[4:-2]) & 0xFF:02x} 16"
    )


def test_good_answer_gives_the_value() -> None:
    raw = answer(ADDR, 0x91, DI.to_bytes(4, "little") + bytes([0x32, 0x54, 0x76, 0x98]))
    assert frame_length(raw) == len(raw)
    value = parse_read_response(raw, ADDR, DI)
    assert bcd_kwh(value) == 987654.32


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (answer(ADDR, 0xD1, bytes([0x02])), MeterError),  # no such data
        (
            answer(encode_address("000000000001"), 0x91, DI.to_bytes(4, "little") + b"\0" * 4),
            FrameError,
        ),
        (
            answer(ADDR, 0x91, (0x00010100).to_bytes(4, "little") + b"\0" * 4),
            FrameError,
        ),  # wrong DI
        (answer(ADDR, 0x91, DI.to_bytes(4, "little") + b"\0" * 4)[:-3], FrameError),  # truncated
        (
            answer(ADDR, 0x91, DI.to_bytes(4, "little") + b"\0" * 4)[:-2] + b"\x00\x16",
            FrameError,
        ),  # CS
        (b"\x00\x01\x02", FrameError),
    ],
)
def test_bad_answers_are_refused(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_read_response(raw, ADDR, DI)


def test_bcd_checks() -> None:
    assert bcd_kwh(bytes([0x99, 0x99, 0x99, 0x99])) == 999999.99  # the register wraps after this
    with pytest.raises(FrameError, match="not BCD"):
        bcd_kwh(bytes([0x0A, 0, 0, 0]))
    with pytest.raises(FrameError, match="4 bytes"):
        bcd_kwh(b"\x00")
