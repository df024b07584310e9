from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from edge.drivers.base import DriverError
from edge.drivers.dlt645.config import (
    DI_FORWARD_ACTIVE_RATES,
    DI_FORWARD_ACTIVE_TOTAL,
    Dlt645Config,
)
from edge.drivers.dlt645.frame import (
    FrameError,
    MeterError,
    bcd_kwh,
    encode_address,
    frame_length,
    parse_read_response,
    read_request,
)


class _Link(Protocol):
    def exchange(self, request: bytes) -> bytes: ...

    def close(self) -> None: ...


def _collect_frame(read: Callable[[int], bytes], timeout_s: float) -> bytes:
    """Read until one complete frame is in (wake-up bytes and all), or time out.

    `read(n)` returns up to n bytes; b"" means nothing came this time.
    """
    buffer = b""
    deadline = time.monotonic() + timeout_s
    while (n := frame_length(buffer)) is None or len(buffer) < n:
        if time.monotonic() > deadline:
            raise TimeoutError("no complete answer")
        buffer += read(max(1, (n or 12) - len(buffer)))
    return buffer


class _TcpLink:
    """A meter behind an RS-485-to-Ethernet converter (transparent TCP)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout_s)
        self._timeout_s = timeout_s

    def exchange(self, request: bytes) -> bytes:
        self._sock.sendall(request)
        return _collect_frame(self._recv, self._timeout_s)

    def _recv(self, n: int) -> bytes:
        chunk = self._sock.recv(n)
        if not chunk:
            raise ConnectionError("the meter closed the connection")
        return chunk

    def close(self) -> None:
        self._sock.close()


class _SerialLink:
    """A meter on the box's own RS-485 port (pyserial, imported only here)."""

    def __init__(self, config: Dlt645Config) -> None:
        import serial  # noqa: PLC0415 - only boxes with a serial meter need it

        self._port = serial.Serial(
            str(config.serial_port), config.baudrate, bytesize=8, parity=config.parity,
            stopbits=1, timeout=config.timeout.total_seconds(),
        )  # fmt: skip
        self._timeout_s = config.timeout.total_seconds()

    def exchange(self, request: bytes) -> bytes:
        self._port.reset_input_buffer()
        self._port.write(request)
        return _collect_frame(self._port.read, self._timeout_s)

    def close(self) -> None:
        self._port.close()


class Dlt645Driver:
    """Reads forward active energy (total, and rates 1-4 if configured) from one meter."""

    def __init__(self, config: Dlt645Config) -> None:
        self.config = config
        self._address = encode_address(config.address)
        self._link: _Link | None = None

    def _read_kwh(self, di: int) -> float:
        if self._link is None:
            c = self.config
            self._link = (
                _TcpLink(str(c.host), c.port, c.timeout.total_seconds())
                if c.transport == "tcp"
                else _SerialLink(c)
            )
        answer = self._link.exchange(read_request(self._address, di))
        return bcd_kwh(parse_read_response(answer, self._address, di))

    def read(self, now: datetime) -> dict[str, Any]:  # noqa: ARG002 - the meter keeps its own clock
        try:
            data: dict[str, Any] = {"energy_kwh_total": self._read_kwh(DI_FORWARD_ACTIVE_TOTAL)}
            if self.config.rates:
                for field, di in zip(self.config.rate_fields, DI_FORWARD_ACTIVE_RATES, strict=True):
                    data[field] = self._read_kwh(di)
        except (OSError, FrameError, MeterError) as exc:  # OSError covers timeouts and resets
            self.close()  # reconnect on the next read
            raise DriverError(
                f"DL/T 645 meter {self.config.address} at {self.config.where()}: {exc}"
            ) from exc
        return data

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
