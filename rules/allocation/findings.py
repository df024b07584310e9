"""What the allocation noticed and did about it, as data with stable codes.

Codes are part of the export's contract: finance clerks and scripts filter on
them, so a code is never renamed. Messages are for people and may change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Code", "Finding"]


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


CODE_LABELS_ZH = {
    Code.COUNTER_RESET: "计数器清零",
    Code.REGISTER_ROLLOVER: "寄存器翻转",
    Code.METER_REPLACED: "更换电表/水表",
    Code.SPIKE_REJECTED: "异常读数已剔除",
    Code.GAP_BRIDGED: "数据中断(按表底数补齐)",
    Code.EXTRAPOLATED_END: "月末无数据(按日均估算)",
    Code.STARTED_IN_MONTH: "月中开始计量",
    Code.NO_DATA: "无数据",
    Code.NO_MAIN_METER: "无总表(按分表合计)",
    Code.MAIN_METER_SILENT: "总表本月无读数(按分表合计)",
    Code.RESIDUAL_NEGATIVE: "分表合计超过总表",
    Code.NO_VISITS: "无到访计数(平均分摊)",
    Code.METER_TOU: "按电表分时寄存器计费",
    Code.METER_TOU_MISMATCH: "分时寄存器与总电量不符",
}


@dataclass(frozen=True)
class Finding:
    code: Code
    station: str
    device: str | None
    message: str
    at_ms: int | None = None
    quantity: float | None = None

    @property
    def label_zh(self) -> str:
        return CODE_LABELS_ZH[self.code]
