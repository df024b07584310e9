from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from waystation.registry import DurationField


class RegisterType(StrEnum):
    """How a value is laid out in 16-bit registers (big-endian words unless word_order says)."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    BOOL = "bool"  # one register, non-zero is true

    @property
    def width(self) -> int:
        return 2 if self in (RegisterType.INT32, RegisterType.UINT32, RegisterType.FLOAT32) else 1


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"


class RegisterSpec(BaseModel):
    """`temp_c: {address: 4, type: int16, scale: 0.1}`: one data field of the reading."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    address: int = Field(ge=0, le=65535)
    type: RegisterType = RegisterType.UINT16
    table: Table = Table.HOLDING
    # Raw value x scale. Integer fields (counts) must keep scale 1 so they stay integers.
    scale: float = 1.0
    word_order: Literal["big", "little"] = "big"


class ModbusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["modbus"]
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = None
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    unit: int = Field(default=1, ge=0, le=247)
    timeout: DurationField = timedelta(seconds=2)
    registers: dict[str, RegisterSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _endpoint(self) -> Self:
        if self.transport == "tcp" and not self.host:
            raise ValueError("a Modbus TCP device needs `host`")
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("a Modbus RTU device needs `serial_port` (e.g. /dev/ttyUSB0)")
        return self
