"""What the allocation noticed and did about it, as data with stable codes.

Codes are part of the export's contract: finance clerks and scripts filter on
them, so a code is never renamed. A finding holds numbers, not sentences: its
words, in the reader's language, come from rules.allocation.wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = ["Arg", "Code", "Finding"]


class Code(StrEnum):
    COUNTER_RESET = "counter_reset"  # register dropped to near zero: counted from the new value
    REGISTER_ROLLOVER = "register_rollover"  # register wrapped past its maximum
    METER_REPLACED = "meter_replaced"  # register jumped to an unrelated value and stayed there
    SPIKE_REJECTED = "spike_rejected"  # one reading implied impossible consumption; ignored
    GAP_BRIDGED = "gap_bridged"  # no readings for hours; the register bridges the gap
    EXTRAPOLATED_END = "extrapolated_end"  # silent at month end: recent daily average used
    STARTED_IN_MONTH = "started_in_month"  # no reading before the month: counted from the first
    NO_DATA = "no_data"  # a device has no readings around the month at all
    NO_MAIN_METER = "no_main_meter"  # the station's total is the sum of its measured loads
    MAIN_METER_SILENT = "main_meter_silent"  # it exists but sent nothing: the loads were billed
    RESIDUAL_NEGATIVE = "residual_negative"  # measured loads exceed the main meter
    NO_VISITS = "no_visits"  # residual by visits, but no visits counted: equal shares
    METER_TOU = "meter_tou"  # the periods come from the meter's own time-of-use registers
    METER_TOU_MISMATCH = "meter_tou_mismatch"  # its period registers disagree with its total


Arg = str | int | float | Decimal


@dataclass(frozen=True)
class Finding:
    """What was noticed, in numbers: `args` fill the code's wording (rules.allocation.wording).

    An argument named `…_at` is a time (epoch ms), shown in the station's zone.
    """

    code: Code
    station: str
    device: str | None
    at_ms: int | None = None
    quantity: float | None = None
    args: tuple[tuple[str, Arg], ...] = ()

    @property
    def values(self) -> dict[str, Arg]:
        return dict(self.args)
