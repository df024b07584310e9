from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edge.drivers.link import LinkConfig


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


class ModbusConfig(LinkConfig):
    type: Literal["modbus"]
    unit: int = Field(default=1, ge=0, le=247)
    registers: dict[str, RegisterSpec] = Field(min_length=1)
