from __future__ import annotations

from datetime import datetime
from typing import Any

from dlt645 import MeterClientService

from edge.drivers.base import DriverError
from edge.drivers.dlt645.config import (
    DI_FORWARD_ACTIVE_RATES,
    DI_FORWARD_ACTIVE_TOTAL,
    Dlt645Config,
)


class Dlt645Driver:
    """Reads forward active energy (total, and rates 1-4 if asked) from one meter."""

    def __init__(self, config: Dlt645Config) -> None:
        self.config = config
        self._client: MeterClientService | None = None

    def _meter(self) -> MeterClientService:
        if self._client is None:
            c = self.config
            timeout = c.timeout.total_seconds()
            if c.transport == "tcp":
                client = MeterClientService.new_tcp_client(str(c.host), c.port, timeout=timeout)
            else:
                client = MeterClientService.new_rtu_client(
                    str(c.serial_port), c.baudrate, 8, 1, c.parity, timeout
                )
            if not client.set_address(c.address):
                raise DriverError(f"invalid DL/T 645 address {c.address!r}")
            self._client = client
        return self._client

    def _read_kwh(self, di: int) -> float:
        # The client reconnects by itself and answers None for any failure.
        item = self._meter().read_00(di)
        if item is None:
            where = self.config.host if self.config.transport == "tcp" else self.config.serial_port
            raise DriverError(
                f"DL/T 645 meter {self.config.address} at {where}: no answer for {di:08X}"
            )
        try:
            return round(float(item.value), 2)
        except (TypeError, ValueError) as exc:
            raise DriverError(f"DL/T 645 {di:08X}: value {item.value!r} is not a number") from exc

    def read(self, now: datetime) -> dict[str, Any]:  # noqa: ARG002 - the meter keeps its own clock
        data: dict[str, Any] = {"energy_kwh_total": self._read_kwh(DI_FORWARD_ACTIVE_TOTAL)}
        if self.config.rates:
            for field, di in zip(self.config.rate_fields, DI_FORWARD_ACTIVE_RATES, strict=True):
                data[field] = self._read_kwh(di)
        return data

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None
