"""What every device driver is: a config model named by `type`, a reader, and its factory."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, get_args

from pydantic import BaseModel, ConfigDict

from waystation.contract import Kind

if TYPE_CHECKING:
    from edge.drivers.simulator.driver import SharedSimulation

__all__ = ["Driver", "DriverError", "DriverSettings", "DriverSite", "DriverType"]


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


class DriverSettings(BaseModel):
    """A driver's config model (`driver:` of a device): validated at start-up, no I/O.

    Each driver declares `type` as its own literal, which pydantic uses to pick
    the model from the `driver:` mapping (declared there, not here, so that the
    keys listed in an error message keep the driver's own order).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    if TYPE_CHECKING:
        type: str


@dataclass(frozen=True, slots=True)
class DriverSite:
    """Where a driver is built: the device, and the station's simulation if it has one."""

    device: str
    simulation: SharedSimulation | None = None


C = TypeVar("C", bound=DriverSettings)


@dataclass(frozen=True, slots=True)
class DriverType(Generic[C]):
    """One row of `edge.drivers.DRIVERS`.

    `factory` imports the driver's module only when a device uses it, so an
    agent with no Modbus device never loads pymodbus. `fields`, for drivers
    configured with a map of data fields, names the fields the map gives (checked
    against the device kind's contract at start-up).
    """

    config: type[C]
    kinds: frozenset[Kind]
    factory: Callable[[C, DriverSite], Driver]
    fields: Callable[[C], Collection[str]] | None = None

    @property
    def name(self) -> str:
        """The `driver.type` that selects it: the literal of its model's `type`."""
        (name,) = get_args(self.config.model_fields["type"].annotation)
        return str(name)
