"""DL/T 645-2007 electricity meters (the `dlt645` package), over TCP or RS-485."""

from __future__ import annotations

from edge.drivers.base import Driver, DriverSite
from edge.drivers.dlt645.config import Dlt645Config


def build(config: Dlt645Config, _site: DriverSite) -> Driver:
    from edge.drivers.dlt645.driver import Dlt645Driver  # noqa: PLC0415 - only when used

    return Dlt645Driver(config)
