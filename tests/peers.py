"""Real protocol peers playing station hardware: a Modbus TCP server and a DL/T 645 meter.

Both listen on a free loopback port and can be stopped and started again on
the same port, so a test can make a device stop answering and come back.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import Any

from dlt645 import MeterServerService
from pymodbus.client import ModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from app.localservers import free_port
from edge.drivers.dlt645.frame import encode_address

HOLDING_WRITE = 16  # Modbus function code for "write multiple holding registers"


def registers(value: float, kind: str) -> list[int]:
    """Encode a value the way a device would hold it (big-endian words)."""
    dt = getattr(ModbusTcpClient.DATATYPE, kind.upper())
    regs = ModbusTcpClient.convert_to_registers(value, dt)
    return list(regs)


class ModbusPeer:
    """A Modbus TCP device with 100 holding registers, unit 1, on its own event loop thread."""

    def __init__(self, unit: int = 1) -> None:
        self.port = free_port()
        self.unit = unit
        self._values = [0] * 100
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None

    def set(self, address: int, regs: list[int]) -> None:
        self._values[address : address + len(regs)] = regs
        if self._server is not None and self._loop is not None:
            fut = asyncio.run_coroutine_threadsafe(
                self._server.async_setValues(self.unit, HOLDING_WRITE, address, regs), self._loop
            )
            fut.result(5)

    def start(self) -> None:
        ready: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            device = SimDevice(
                id=self.unit,
                simdata=[
                    SimData(address=0, values=list(self._values), datatype=DataType.REGISTERS)
                ],
            )

            async def serve() -> None:
                self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
                await self._server.serve_forever(background=True)
                ready.set_result(None)
                await self._server.serving

            loop.run_until_complete(serve())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.result(10)

    def stop(self) -> None:
        if self._server is not None and self._loop is not None:
            shutdown = self._server.shutdown()  # type: ignore[no-untyped-call]
            asyncio.run_coroutine_threadsafe(shutdown, self._loop).result(10)
        if self._thread is not None:
            self._thread.join(10)
        self._server = None


class Dlt645Peer:
    """A DL/T 645-2007 meter over TCP (the `dlt645` package's server)."""

    def __init__(self, address: str = "000000000000") -> None:
        self.address = address
        self.port = free_port()
        self._meter: Any = None
        self._values: dict[int, float] = {}

    def set_kwh(self, di: int, kwh: float) -> None:
        self._values[di] = kwh
        if self._meter is not None:
            self._meter.set_00(di, kwh)

    def start(self) -> None:
        self._meter = MeterServerService.new_tcp_server("127.0.0.1", self.port, timeout=2.0)
        # The package takes a string address in printed order, but DL/T 645-2007
        # sends the lowest byte first; give it the bytes a real meter with this
        # label answers to.
        self._meter.set_address(bytearray(encode_address(self.address)))
        for di, kwh in self._values.items():
            self._meter.set_00(di, kwh)
        self._meter.start()

    def stop(self) -> None:
        if self._meter is not None:
            self._meter.stop()
            self._meter = None
