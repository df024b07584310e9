"""What each register counted in the month, as the allocation measured it (for the scorecard).

The allocation reads every cumulative register of a station once and turns
it into the month's consumption with its register arithmetic (month edges
interpolated at local midnight, resets, rollovers, spikes, gaps, meter swaps,
a silent end extrapolated). `StationResult.usage` keeps that figure per
register, in the register's own unit (litres for a dispenser's water, not
the m³ it is billed in), so other parts of the monthly report (the
service-level scorecard's usage, wired by `app`) take it instead of reading
the registers a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rules.allocation.findings import Code
from rules.allocation.registers import Usage
from waystation.contract import Kind

__all__ = ["QTY", "RegisterUsage", "quantity", "register_usage"]

QTY = Decimal("0.0001")  # the allocation's own precision for measured quantities


@dataclass(frozen=True, slots=True)
class RegisterUsage:
    """One register's month.

    `quantity` is None when the register had no reading around the month at all
    (finding `no_data`): nothing was measured, and no figure is made up. Otherwise
    it is the month's consumption (edges interpolated), of which `estimated` was
    estimated (`extrapolated_end`, `meter_replaced`). `notes` are the codes of
    what the register arithmetic noticed, each once, in the order first seen.
    """

    device: str
    kind: Kind
    field: str
    unit: str  # "kWh", "m³", "l" or "visits"
    quantity: Decimal | None
    estimated: Decimal
    notes: tuple[Code, ...]


def quantity(value: float, scale: Decimal = Decimal(1)) -> Decimal:
    """A measured float as the Decimal the allocation computes with (scaled to another unit)."""
    return (Decimal(repr(value)) * scale).quantize(QTY)


def register_usage(device: str, kind: Kind, field: str, unit: str, usage: Usage) -> RegisterUsage:
    """The month of one register from its measured `Usage`."""
    notes = tuple(dict.fromkeys(f.code for f in usage.findings))
    silent = Code.NO_DATA in notes
    return RegisterUsage(
        device,
        kind,
        field,
        unit,
        None if silent else quantity(usage.total),
        Decimal(0) if silent else quantity(usage.estimated),
        notes,
    )
