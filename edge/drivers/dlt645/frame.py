"""DL/T 645-2007 frames: just what reading energy registers needs.

A frame is `68 A0..A5 68 C L DATA CS 16`, optionally preceded by `FE` wake-up
bytes. The address is six BCD bytes, lowest first (the printed address read
right to left in pairs); every data byte travels plus 33H; CS is the byte sum
from the first 68 to the end of DATA. Reading: C = 11H with the 4-byte data
identifier (DI, lowest byte first); a good answer has C = 91H (B1H when more
frames follow) and DATA = DI + value; an error answer has C = D1H and one
error byte. Energy values are 4 bytes of BCD, lowest first, XXXXXX.XX kWh.

Written here rather than taken from the `dlt645` package, whose import alone
costs about 30 MB of memory on an edge box; that package plays the meter in
our tests, so the two implementations check each other.
"""

from __future__ import annotations

__all__ = [
    "FrameError",
    "MeterError",
    "bcd_kwh",
    "encode_address",
    "parse_read_response",
    "read_request",
]

PREAMBLE = b"\xfe\xfe\xfe\xfe"
START, END = 0x68, 0x16
READ, READ_OK, READ_OK_MORE, READ_ERROR = 0x11, 0x91, 0xB1, 0xD1
HEADER_LEN = 10  # 68 A0..A5 68 C L


class FrameError(ValueError):
    """Bytes that are not a well-formed answer to our request."""


class MeterError(RuntimeError):
    """The meter answered with an error (e.g. it has no such data identifier)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"meter error {code:#04x}" + (" (no such data)" if code & 0x02 else ""))
        self.code = code


def encode_address(address: str) -> bytes:
    """The 12-digit printed address as the six address bytes of a frame, A0 first."""
    if len(address) != 12 or not all(c in "0123456789AaFf" for c in address):
        raise ValueError(f"a DL/T 645 address is 12 BCD digits, not {address!r}")
    return bytes.fromhex(address)[::-1]


def _plus33(data: bytes) -> bytes:
    return bytes((b + 0x33) & 0xFF for b in data)


def _minus33(data: bytes) -> bytes:
    return bytes((b - 0x33) & 0xFF for b in data)


def read_request(address: bytes, di: int) -> bytes:
    body = bytes([START]) + address + bytes([START, READ, 4]) + _plus33(di.to_bytes(4, "little"))
    return PREAMBLE + body + bytes([sum(body) & 0xFF, END])


def frame_length(buffer: bytes) -> int | None:
    """Bytes from the first 68 to the final 16 once the header is in; None before."""
    start = buffer.find(bytes([START]))
    if start < 0 or len(buffer) - start < HEADER_LEN:
        return None
    return start + HEADER_LEN + buffer[start + 9] + 2


def parse_read_response(raw: bytes, address: bytes, di: int) -> bytes:
    """The value bytes of the answer to reading `di` from `address`."""
    start = raw.find(bytes([START]))
    if start < 0 or len(raw) - start < HEADER_LEN + 2:
        raise FrameError(f"short or headless frame: {raw.hex(' ')}")
    frame = raw[start:]
    length = frame[9]
    if len(frame) < HEADER_LEN + length + 2 or frame[7] != START:
        raise FrameError(f"truncated frame: {raw.hex(' ')}")
    body, checksum, end = (
        frame[: HEADER_LEN + length],
        frame[HEADER_LEN + length],
        frame[HEADER_LEN + length + 1],
    )
    if end != END or sum(body) & 0xFF != checksum:
        raise FrameError(f"bad checksum or end byte: {raw.hex(' ')}")
    if frame[1:7] != address and address != b"\xaa" * 6:
        raise FrameError(f"answer from address {frame[1:7][::-1].hex()}, not {address[::-1].hex()}")
    control, data = frame[8], _minus33(frame[HEADER_LEN : HEADER_LEN + length])
    if control == READ_ERROR:
        raise MeterError(data[0] if data else 0)
    if control not in (READ_OK, READ_OK_MORE):
        raise FrameError(f"unexpected control code {control:#04x}")
    if data[:4] != di.to_bytes(4, "little"):
        raise FrameError(f"answer for DI {int.from_bytes(data[:4], 'little'):08X}, not {di:08X}")
    return data[4:]


def bcd_kwh(value: bytes) -> float:
    """4 bytes of BCD, lowest first, XXXXXX.XX."""
    if len(value) != 4:
        raise FrameError(f"an energy value is 4 bytes, got {len(value)}")
    digits = value[::-1].hex()
    if not digits.isdigit():
        raise FrameError(f"not BCD: {value.hex(' ')}")
    return int(digits) / 100
