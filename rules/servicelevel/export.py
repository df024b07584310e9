"""The scorecard's outputs: `service-M.csv`, a sheet in the workbook, `service_level` points.

The CSV is for machines, like the allocation's: UTF-8 with a BOM, the
columns' English keys as headers, services by key, rows sorted (stations, then each
operator as station `*`), so a re-run writes the same bytes. The sheet is
added by `add_sheet`, which the allocation's workbook export calls, in the
registry's language and the workbook's table style (`table_sheet`).

Each row's usage (`rules.servicelevel.usage`) is in the last four columns:
`usage` (two decimals, empty on `station` rows and when no device had data),
`usage_unit` (`visits`, `l`, `kWh`), `usage_estimated` (the part estimated)
and `usage_notes` (the allocation's codes, `code@device` joined by `;` as in
its CSV; worded in the sheet).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from rules.allocation.sheetstyle import QUANTITY
from rules.allocation.workbook import table_sheet
from rules.servicelevel.definitions import Service
from rules.servicelevel.monthly import ServiceReport, month_span
from rules.servicelevel.scorecard import ServiceLevel, minutes, two
from rules.servicelevel.usage import ServiceUsage
from waystation.language import Language, unit_text
from waystation.lineprotocol import FieldValue, encode_line
from waystation.registry import Registry

__all__ = ["COLUMNS", "add_sheet", "csv_path", "service_lines", "write_csv"]
# (header as printed, key): Chinese first, the English key after it for scripts.
COLUMNS = [
    ("月份 month", "month"),
    ("站点编号 station", "station"),
    ("站点名称 station_name", "station_name"),
    ("运营方 operator", "operator"),
    ("服务 service", "service"),
    ("可用率(%) availability_pct", "availability_pct"),
    ("中断次数 outages", "outages"),
    ("中断分钟 down_minutes", "down_minutes"),
    ("最长中断分钟 longest_minutes", "longest_minutes"),
    ("平均恢复分钟 mttr_minutes", "mttr_minutes"),
    ("营业分钟 opening_minutes", "opening_minutes"),
    ("告警次数 alerts", "alerts"),
    ("告警恢复中位分钟 alert_median_resolve_minutes", "alert_median_resolve_minutes"),
    ("用量 usage", "usage"),
    ("用量单位 usage_unit", "usage_unit"),
    ("其中估算 usage_estimated", "usage_estimated"),
    ("用量说明 usage_notes", "usage_notes"),
]
USAGE_AT = 13  # the first usage column's index
SERVICE_ZH = {
    Service.STATION: "驿站在线",
    Service.HOT_WATER: "热水",
    Service.CHARGING: "充电",
    Service.VISITS: "客流计数",
}


def csv_path(out_dir: Path, report: ServiceReport, stations: list[str] | None = None) -> Path:
    """`service-2026-10.csv`; with --station, named after them like the allocation's."""
    stem = f"service-{report.month:%Y-%m}"
    if stations:
        stem += "-" + "+".join(sorted(set(stations)))[:120]
    return out_dir / f"{stem}.csv"


Labels = Mapping[str, str]  # a note's code → its words in the registry's language


def _coded(usage: ServiceUsage) -> str:
    """The notes for machines, as the allocation's CSV writes them: `code@device;…`."""
    return ";".join(f"{code}@{device}" for code, device in usage.notes)


def _usage_csv(usage: ServiceUsage | None) -> list[str | Decimal | None]:
    if usage is None:
        return [None] * 4
    return [None if usage.quantity is None else two(usage.quantity), usage.unit,
            two(usage.estimated), _coded(usage)]  # fmt: skip


def _usage_sheet(
    usage: ServiceUsage | None, lang: Language, labels: Labels
) -> list[str | Decimal | None]:
    """The usage in the reader's words: units and notes as the allocation's workbook words them."""
    if usage is None:
        return [None] * 4
    notes = ("；" if lang == "zh" else "; ").join(
        f"{labels.get(code, code)}({device})" for code, device in usage.notes
    )
    return [None if usage.quantity is None else two(usage.quantity),
            unit_text(usage.unit, lang), two(usage.estimated), notes]  # fmt: skip


def _cells(row: ServiceLevel, registry: Registry) -> list[str | int | Decimal]:
    spec = registry.stations.get(row.station)
    mttr = None if row.mttr_ms is None else minutes(int(row.mttr_ms))
    alerts = row.alerts
    median = (
        None
        if alerts is None or alerts.median_resolve_ms is None
        else minutes(alerts.median_resolve_ms)
    )
    values: list[str | int | Decimal | None] = [
        f"{row.month:%Y-%m}",
        row.station,
        spec.name if spec else "",
        row.operator,
        f"{SERVICE_ZH[row.service]} {row.service.value}",
        row.availability_pct,
        row.outages,
        minutes(row.down_ms),
        minutes(row.longest_ms),
        mttr,
        minutes(row.opening_ms),
        None if alerts is None else alerts.fired,
        median,
    ]
    return ["" if v is None else v for v in values]


def write_csv(report: ServiceReport, registry: Registry, path: Path) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([key for _, key in COLUMNS])  # for machines: the keys (the sheet is worded)
    for row in report.rows:
        cells = _cells(row, registry)
        cells[4] = row.service.value
        writer.writerow(cells + ["" if v is None else v for v in _usage_csv(row.usage)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8-sig", newline="")
    return path


def add_sheet(
    wb: Workbook, report: ServiceReport, registry: Registry, labels: Labels | None = None
) -> None:
    """The scorecard as one sheet of the month's workbook, in the workbook's own table style.

    `labels` word the usage notes' codes in the registry's language (else the codes show).
    """
    lang = registry.language
    zh = lang == "zh"
    headers = [header.split()[0] if zh else key for header, key in COLUMNS]
    rows = []
    for row in report.rows:
        cells = _cells(row, registry)
        cells[4] = SERVICE_ZH[row.service] if zh else row.service.value
        usage = _usage_sheet(row.usage, lang, labels or {})
        rows.append(cells + ["" if v is None else v for v in usage])
    name = "服务水平" if zh else "Service levels"
    table_sheet(wb, name, f"{report.month:%Y-%m} {name}", headers, rows,
                formats={5: QUANTITY, 7: QUANTITY, 8: QUANTITY, 9: QUANTITY, 10: QUANTITY,
                         12: QUANTITY, USAGE_AT: QUANTITY, USAGE_AT + 2: QUANTITY},
                landscape=True)  # fmt: skip


def service_lines(report: ServiceReport, registry: Registry) -> list[str]:
    """`service_level` points, stamped at the month's start so a re-run overwrites them."""
    stamp, _ = month_span(report.month, ZoneInfo(registry.timezone))
    out = []
    for row in report.rows:
        fields: dict[str, FieldValue] = {
            "outages": row.outages,
            "down_minutes": float(minutes(row.down_ms)),
            "longest_minutes": float(minutes(row.longest_ms)),
            "opening_minutes": float(minutes(row.opening_ms)),
        }
        if row.availability_pct is not None:
            fields["availability_pct"] = float(row.availability_pct)
        if row.mttr_ms is not None:
            fields["mttr_minutes"] = float(minutes(int(row.mttr_ms)))
        if row.alerts is not None:
            fields["alerts"] = row.alerts.fired
        fields |= _usage_fields(row.usage)
        tags = {"station": row.station, "operator": row.operator or "-",
                "service": row.service.value}  # fmt: skip
        out.append(encode_line("service_level", tags, fields, stamp))
    return out


def _usage_fields(usage: ServiceUsage | None) -> dict[str, FieldValue]:
    """`usage` and `usage_estimated` in `usage_unit`; no `usage` when no device had data."""
    if usage is None:
        return {}
    fields: dict[str, FieldValue] = {"usage_unit": usage.unit,
                                     "usage_estimated": float(usage.estimated)}  # fmt: skip
    if usage.quantity is not None:
        fields["usage"] = float(usage.quantity)
    if usage.notes:
        fields["usage_notes"] = _coded(usage)
    return fields
