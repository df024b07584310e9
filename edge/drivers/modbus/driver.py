from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.drivers.base import DriverError
from edge.drivers.modbus.config import ModbusConfig, RegisterSpec, RegisterType, Table

_DATATYPE = {
    RegisterType.INT16: ModbusTcpClient.DATATYPE.INT16,
    RegisterType.UINT16: ModbusTcpClient.DATATYPE.UINT16,
    RegisterType.INT32: ModbusTcpClient.DATATYPE.INT32,
    RegisterType.UINT32: ModbusTcpClient.DATATYPE.UINT32,
    RegisterType.FLOAT32: ModbusTcpClient.DATATYPE.FLOAT32,
}


def decode(spec: RegisterSpec, registers: list[int]) -> bool | int | float:
    if spec.type is RegisterType.BOOL:
        return registers[0] != 0
    raw = ModbusTcpClient.convert_from_registers(
        registers, _DATATYPE[spec.type], word_order=spec.word_order
    )
    assert isinstance(raw, int | float)  # noqa: S101 - scalar types only
    if spec.scale == 1 and isinstance(raw, int):
        return raw
    return round(float(raw) * spec.scale, 6)


class ModbusDriver:
    """Reads each register table in one request spanning the fields it holds."""

    def __init__(self, config: ModbusConfig) -> None:
        self.config = config
        self._client: ModbusTcpClient | ModbusSerialClient | None = None
        self._spans: dict[Table, tuple[int, int]] = {}
        by_table: dict[Table, list[RegisterSpec]] = defaultdict(list)
        for spec in config.registers.values():
            by_table[spec.table].append(spec)
        for table, specs in by_table.items():
            start = min(s.address for s in specs)
            end = max(s.address + s.type.width for s in specs)
            self._spans[table] = (start, end - start)

    def _connect(self) -> ModbusTcpClient | ModbusSerialClient:
        if self._client is None:
            c = self.config
            timeout = c.timeout.total_seconds()
            if c.transport == "tcp":
                assert c.host is not None  # noqa: S101 - checked by the config
                self._client = ModbusTcpClient(c.host, port=c.port, timeout=timeout, retries=0)
            else:
                assert c.serial_port is not None  # noqa: S101 - checked by the config
                self._client = ModbusSerialClient(
                    c.serial_port, baudrate=c.baudrate, parity=c.parity, timeout=timeout, retries=0
                )
        if not self._client.connected and not self._client.connect():
            raise DriverError(f"cannot connect to Modbus device ({self.config.where()})")
        return self._client

    def read(self, now: datetime) -> dict[str, Any]:  # noqa: ARG002 - the device has no clock here
        client = self._connect()
        blocks: dict[Table, list[int]] = {}
        try:
            for table, (start, count) in self._spans.items():
                fn = (
                    client.read_holding_registers
                    if table is Table.HOLDING
                    else client.read_input_registers
                )
                rr = fn(start, count=count, device_id=self.config.unit)
                if rr.isError():
                    raise DriverError(f"Modbus {table} registers {start}+{count}: {rr}")
                blocks[table] = list(rr.registers)
        except ModbusException as exc:
            self.close()  # reconnect on the next read
            raise DriverError(f"Modbus device ({self.config.where()}): {exc}") from exc
        data: dict[str, Any] = {}
        for field, spec in self.config.registers.items():
            start = self._spans[spec.table][0]
            offset = spec.address - start
            data[field] = decode(spec, blocks[spec.table][offset : offset + spec.type.width])
        return data

    def close(self) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[no-untyped-call]
            self._client = None
