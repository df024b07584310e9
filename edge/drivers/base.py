"""The one small interface every device driver implements."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

__all__ = ["Driver", "DriverError"]


class DriverError(Exception):
    """The device did not answer, or answered something unusable. The device is unreachable."""


class Driver(Protocol):
    """Reads one device.

    Lifecycle: `read` is called once per interval by the device's own poller
    thread, and only by it; `close` once at shutdown. A driver connects lazily
    inside `read` and reconnects there after a failure. `read` must give up on
    its own within its configured timeout (a hung device must not hang the
    poller) and raise DriverError for anything that is not a good reading.
    It returns the reading's `data` object (SPEC §4) for the device's kind.
    """

    def read(self, now: datetime) -> dict[str, Any]: ...

    def close(self) -> None: ...
