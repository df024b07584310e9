"""Where a wired device is: a TCP endpoint (device or RS-485 converter) or a serial port."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, model_validator

from edge.drivers.base import DriverSettings
from waystation.configerror import Invalid, Text
from waystation.durations import DurationField


class LinkConfig(DriverSettings):
    """Fields every wired driver shares; a driver overrides the defaults its devices use."""

    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = None
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    timeout: DurationField = timedelta(seconds=2)

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.transport == "tcp" and not self.host:
            raise Invalid(
                Text("over TCP the device needs `host`", "走 TCP 的设备需要写 `host`"),
                Text("add `host: <address>`, or `transport: rtu` with `serial_port`",
                     "加上 `host: <地址>`；串口设备写 `transport: rtu` 和 `serial_port`"),
                code="missing",
            )  # fmt: skip
        if self.transport == "rtu" and not self.serial_port:
            raise Invalid(
                Text("on a serial line the device needs `serial_port` (e.g. /dev/ttyUSB0)",
                     "串口设备需要写 `serial_port`（如 /dev/ttyUSB0）"),
                code="missing",
            )  # fmt: skip
        return self

    def where(self) -> str:
        return f"{self.host}:{self.port}" if self.transport == "tcp" else str(self.serial_port)
