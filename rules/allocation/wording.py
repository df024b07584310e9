"""Allocation findings in the reader's language: a label per code and a sentence with its figures.

Times in a finding (`…_at` arguments) are shown in the station's zone with
its offset; units and utilities in the reader's words.
"""

from __future__ import annotations

from datetime import tzinfo

from rules.allocation.findings import Code, Finding
from waystation.language import Language, unit_text
from waystation.localtime import local_text

__all__ = ["LABELS", "SENTENCES", "finding_label", "finding_text"]

LABELS: dict[Language, dict[Code, str]] = {
    "zh": {
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
    },
    "en": {
        Code.COUNTER_RESET: "counter reset",
        Code.REGISTER_ROLLOVER: "register rollover",
        Code.METER_REPLACED: "meter replaced",
        Code.SPIKE_REJECTED: "implausible reading ignored",
        Code.GAP_BRIDGED: "gap bridged by the register",
        Code.EXTRAPOLATED_END: "silent at month end (estimated)",
        Code.STARTED_IN_MONTH: "metering started in the month",
        Code.NO_DATA: "no data",
        Code.NO_MAIN_METER: "no main meter (sum of the loads)",
        Code.MAIN_METER_SILENT: "main meter silent (sum of the loads)",
        Code.RESIDUAL_NEGATIVE: "loads exceed the main meter",
        Code.NO_VISITS: "no visits counted (equal shares)",
        Code.METER_TOU: "billed from the meter's time-of-use registers",
        Code.METER_TOU_MISMATCH: "time-of-use registers disagree with the total",
    },
}
SENTENCES: dict[Language, dict[Code, str]] = {
    "zh": {
        Code.COUNTER_RESET: "读数由 {before:g} 降为 {after:g}：计数器清零，从零起算",
        Code.REGISTER_ROLLOVER: "读数由 {before:g} 翻转为 {after:g}：寄存器满量程后从头计数",
        Code.METER_REPLACED: "读数由 {before:g} 跳到 {after:g}：已换表；换表期间 {delta:.3f} "
        "{unit}按前一天的用量估算",
        Code.SPIKE_REJECTED: "读数 {value:g} {unit}不合理，已剔除",
        Code.GAP_BRIDGED: "自 {since_at} 起 {hours:.1f} 小时无读数；其间 {delta:.3f} "
        "{unit}按表底数摊入",
        Code.EXTRAPOLATED_END: "自 {since_at} 起无读数；按日均 {per_day:.3f} {unit}估算 "
        "{delta:.3f} {unit}",
        Code.STARTED_IN_MONTH: "月初之前无读数，从首个读数（{first_at}）起算",
        Code.NO_DATA: "本月内及月初之前均无读数",
        Code.NO_MAIN_METER: "无总{meter}：总量按各分路合计",
        Code.MAIN_METER_SILENT: "总{meter}本月无读数：按各分路合计 {billed:.3f} {unit}"
        "计费（实际账单可能更高）",
        Code.RESIDUAL_NEGATIVE: "各分路合计超过总{meter} {excess:.3f} {unit}；分路按总表缩减",
        Code.NO_VISITS: "本月无到访计数；公共部分平均分摊",
        Code.METER_TOU: "峰平谷电量取自电表自身的分时寄存器",
        Code.METER_TOU_MISMATCH: "分时寄存器合计与总电量相差 {gap:.3f} {unit}",
    },
    "en": {
        Code.COUNTER_RESET: "register reset {before:g} → {after:g}; counted from zero",
        Code.REGISTER_ROLLOVER: "register wrapped {before:g} → {after:g}",
        Code.METER_REPLACED: "register {before:g} → {after:g}: new meter; {delta:.3f} {unit} "
        "across the swap estimated from the day before",
        Code.SPIKE_REJECTED: "reading {value:g} {unit} ignored",
        Code.GAP_BRIDGED: "no readings for {hours:.1f} h from {since_at}; {delta:.3f} {unit} "
        "spread over the gap",
        Code.EXTRAPOLATED_END: "silent since {since_at}; {delta:.3f} {unit} estimated at "
        "{per_day:.3f} {unit}/day",
        Code.STARTED_IN_MONTH: "no reading before the month; counted from the first, at {first_at}",
        Code.NO_DATA: "no reading in or before the month",
        Code.NO_MAIN_METER: "no main {meter}: total is the measured loads",
        Code.MAIN_METER_SILENT: "main {meter} sent no reading this month: billed the measured "
        "loads instead, {billed:.3f} {unit} (the bill may be higher)",
        Code.RESIDUAL_NEGATIVE: "measured loads exceed the main {meter} by {excess:.3f} {unit}; "
        "loads scaled down to the main meter",
        Code.NO_VISITS: "no visits counted this month; residual shared equally",
        Code.METER_TOU: "periods from the meter's own registers",
        Code.METER_TOU_MISMATCH: "the period registers add up to {gap:.3f} {unit} away from "
        "the total register",
    },
}
METERS: dict[Language, dict[str, str]] = {
    "zh": {"electricity": "电表", "water": "水表"},
    "en": {"electricity": "electricity meter", "water": "water meter"},
}


def finding_label(code: Code, language: Language) -> str:
    return LABELS[language][code]


def finding_text(finding: Finding, language: Language, tz: tzinfo) -> str:
    """The finding's sentence, its times in `tz` with the offset shown."""
    values: dict[str, object] = {}
    for name, value in finding.args:
        if name.endswith("_at") and isinstance(value, int):
            values[name] = local_text(value, tz)
        elif name == "unit" and isinstance(value, str):
            values[name] = unit_text(value, language)
        elif name == "utility" and isinstance(value, str):
            values["meter"] = METERS[language].get(value, value)
        else:
            values[name] = value
    return SENTENCES[language][finding.code].format(**values)
