"""Usage beside the service levels: visits, hot-water litres and charging kWh in the month.

The figures are the monthly allocation's: it reads every cumulative register
once, with its register arithmetic (month edges interpolated at local
midnight, resets, rollovers, spikes, gaps, meter swaps, a silent end
extrapolated), and `app` hands each register's month over as a plain
`RegisterMonth`; the scorecard never reads the registers itself.

- A service's usage at a station is the sum over the devices that provide it
  (`hot_water`: the dispensers' `water_l_total`, `charging`: the lockers'
  `energy_kwh_total`, `visits`: the door counters' `in_total`); `station` has
  none. A device without data counts nothing and is named in the notes
  (`no_data@device`); when no device of the service had data there is no
  figure at all (None), never a made-up number.
- An operator's usage is the sum over its stations, with their notes.
- `estimated` is the part the allocation estimated (a silent month end, a
  meter swap), as its own exports say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from rules.servicelevel.definitions import Service

__all__ = ["NO_DATA", "USAGE", "RegisterMonth", "ServiceUsage", "service_usage", "total_usage"]

# The register each service's usage is counted on, and its unit.
USAGE: dict[Service, tuple[str, str]] = {
    Service.HOT_WATER: ("water_l_total", "l"),
    Service.CHARGING: ("energy_kwh_total", "kWh"),
    Service.VISITS: ("in_total", "visits"),
}
NO_DATA = "no_data"  # the allocation's code for a register without a reading around the month

Note = tuple[str, str]  # (code, device)


@dataclass(frozen=True, slots=True)
class RegisterMonth:
    """One device register's month as the allocation measured it.

    `quantity` None: no reading around the month (`no_data`); `notes` are the
    allocation's finding codes for the register (`counter_reset`, `gap_bridged`, …).
    """

    device: str
    field: str
    quantity: Decimal | None
    estimated: Decimal = Decimal(0)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceUsage:
    """A service's usage in the month at a station or an operator's stations."""

    quantity: Decimal | None  # None: no device of the service had data
    unit: str  # "l", "kWh" or "visits"
    estimated: Decimal
    notes: tuple[Note, ...]  # sorted (code, device)


def service_usage(
    service: Service, devices: Iterable[str], registers: Mapping[tuple[str, str], RegisterMonth]
) -> ServiceUsage | None:
    """The usage of `service` over its providing `devices` (None: a service without usage).

    A device the allocation gave nothing for is noted `no_data`, like one it measured
    nothing for.
    """
    if service not in USAGE:
        return None
    field, unit = USAGE[service]
    months = [registers.get((d, field), RegisterMonth(d, field, None, notes=(NO_DATA,)))
              for d in devices]  # fmt: skip
    measured = [m.quantity for m in months if m.quantity is not None]
    return ServiceUsage(
        sum(measured, Decimal(0)) if measured else None,
        unit,
        sum((m.estimated for m in months), Decimal(0)),
        tuple(sorted({(code, m.device) for m in months for code in m.notes})),
    )


def total_usage(usages: Iterable[ServiceUsage | None]) -> ServiceUsage | None:
    """Several stations' usage of one service summed (an operator's), notes joined."""
    present = [u for u in usages if u is not None]
    if not present:
        return None
    measured = [u.quantity for u in present if u.quantity is not None]
    return ServiceUsage(
        sum(measured, Decimal(0)) if measured else None,
        present[0].unit,
        sum((u.estimated for u in present), Decimal(0)),
        tuple(sorted({note for u in present for note in u.notes})),
    )
