from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from edge.drivers.dlt645.frame import encode_address
from edge.drivers.link import LinkConfig
from waystation.configerror import Invalid, Text
from waystation.contract import TARIFF_FIELDS
from waystation.durations import DurationField

# Data identifiers (DI) of DL/T 645-2007: forward active energy, total and
# rates 1-4, each 4 bytes of BCD in kWh with two decimals (XXXXXX.XX).
DI_FORWARD_ACTIVE_TOTAL = 0x00010000
DI_FORWARD_ACTIVE_RATES = (0x00010100, 0x00010200, 0x00010300, 0x00010400)

# Rates 1-4 are conventionally 尖/峰/平/谷, the contract's tariff registers in
# that order; a meter programmed otherwise says so in config.
DEFAULT_RATE_FIELDS = TARIFF_FIELDS


class Dlt645Config(LinkConfig):
    type: Literal["dlt645"]
    port: int = Field(default=8899, ge=1, le=65535)  # a common converter port
    baudrate: int = 2400  # the usual DL/T 645 RS-485 line
    parity: Literal["N", "E", "O"] = "E"
    timeout: DurationField = timedelta(seconds=3)
    # The meter's 12-digit address as printed on its label ("AAAAAAAAAAAA" broadcasts).
    address: str = "000000000000"
    rates: bool = True  # also read the four tariff registers
    rate_fields: tuple[str, str, str, str] = DEFAULT_RATE_FIELDS

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, value: object) -> object:
        """Whatever the frame codec would refuse is refused here, at start-up."""
        if isinstance(value, int) and not isinstance(value, bool):
            raise _unquoted(value)
        try:
            encode_address(str(value) if isinstance(value, str) else "")
        except ValueError:
            raise Invalid(
                Text(
                    f"{value!r} is not a DL/T 645 meter address: 12 digits as printed on "
                    "the meter's label (A for a wildcard digit)",
                    f"{value!r} 不是 DL/T 645 表地址：应为表铭牌上印的 12 位数字（通配位写 A）",
                ),
                Text(
                    'quote it, so leading zeros stay: address: "000012345678"',
                    '加上引号以保留开头的 0：address: "000012345678"',
                ),
            ) from None
        return value


def _unquoted(value: int) -> Invalid:
    """An address written without quotes: YAML made a number of it (octal, from a leading 0)."""
    decimal = str(value)
    typed = decimal if len(decimal) == 12 else f"{value:o}".zfill(12)
    return Invalid(
        Text(
            f"the address was read as the number {value}: without quotes, YAML reads digits "
            "as a number (and ones starting with 0 as octal)",
            f"表地址被读成了数字 {value}：不加引号时 YAML 把数字当作数值"
            "（以 0 开头的还当作八进制）",
        ),
        Text(
            f'quote the 12 digits from the meter\'s label: address: "{typed}" (check it '
            "against the label)",
            f'给表铭牌上的 12 位数字加上引号：address: "{typed}"（请与铭牌核对）',
        ),
        code="address_not_quoted",
    )
