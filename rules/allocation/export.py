"""The files finance clerks open: CSV (UTF-8 with BOM, so Excel reads the Chinese) and XLSX.

Both are byte-for-byte the same when a month is re-run: rows are sorted, the
workbook's document dates are the month's, and the XLSX archive's entry
times are fixed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from rules.allocation.compute import PartyLine
from rules.allocation.report import MonthReport
from rules.allocation.tariff import PERIOD_LABELS_ZH, Period

__all__ = ["COLUMNS", "EXAMPLE_MARK", "export_paths", "write_csv", "write_xlsx"]

# On every row of a report priced with example prices (unless asked not to mark it).
EXAMPLE_MARK = "示例价格 example prices"
# Past this, several stations' ids in a file name give way to a count and a digest.
MAX_STEM_STATIONS = 120

# (header as printed, key) — Chinese first, the English key after it for scripts.
COLUMNS = [
    ("月份 month", "month"),
    ("站点编号 station", "station"),
    ("站点名称 station_name", "station_name"),
    ("承担方编号 party", "party"),
    ("承担方 party_name", "party_name"),
    ("类型 party_type", "party_type"),
    ("能源 utility", "utility"),
    ("用量 quantity", "quantity"),
    ("单位 unit", "unit"),
    *[(f"{PERIOD_LABELS_ZH[p]} {p}_kwh", f"{p}_kwh") for p in Period],
    ("费用(元) cost_cny", "cost"),
    ("占比 share", "share"),
    ("估算比例 estimated_fraction", "estimated_fraction"),
    ("备注 notes", "notes"),
]
UTILITY_ZH = {"electricity": "电", "water": "水"}
PARTY_TYPE_ZH = {
    "union": "工会",
    "enterprise": "企业",
    "industry_union": "行业工会",
    "community": "社区",
    "department": "部门",
}


def export_paths(
    out_dir: Path, report: MonthReport, stations: Sequence[str] | None = None
) -> tuple[Path, Path]:
    """`allocation-2026-10` for the district; a report of some stations names them.

    So `--station` never overwrites the district's files with one station's.
    """
    stem = f"allocation-{report.month:%Y-%m}"
    if stations:
        chosen = sorted(set(stations))
        joined = "+".join(chosen)
        if len(joined) > MAX_STEM_STATIONS:
            digest = hashlib.sha256(joined.encode()).hexdigest()[:8]
            joined = f"{len(chosen)}-stations-{digest}"
        stem = f"{stem}-{joined}"
    return out_dir / f"{stem}.csv", out_dir / f"{stem}.xlsx"


def _row(report: MonthReport, line: PartyLine, mark: bool = False) -> list[str | Decimal]:
    values: dict[str, str | Decimal] = {
        "month": f"{report.month:%Y-%m}",
        "station": line.station,
        "station_name": line.station_name,
        "party": line.party,
        "party_name": line.party_name,
        "party_type": line.party_type,
        "utility": line.utility.value,
        "quantity": line.quantity,
        "unit": line.unit,
        "cost": line.cost,
        "share": line.share,
        "estimated_fraction": line.estimated_fraction,
        "notes": "; ".join(n for n in (EXAMPLE_MARK if mark else "", line.notes) if n),
    }
    for p in Period:
        values[f"{p}_kwh"] = line.tou.get(p, "")
    return [values[key] for _, key in COLUMNS]


def _rows(report: MonthReport, mark: bool) -> list[list[str | Decimal]]:
    return [
        _row(report, line, mark)
        for station in report.stations
        for util in station.utilities
        for line in util.lines
    ]


def write_csv(report: MonthReport, path: Path, *, mark_examples: bool = True) -> Path:
    """The rows; with example prices (and `mark_examples`) every row's notes say so."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([header for header, _ in COLUMNS])
    writer.writerows(_rows(report, mark_examples and report.example_prices))
    path.write_text(buf.getvalue(), encoding="utf-8-sig", newline="")
    return path


def _sheet_title(station: str, used: set[str]) -> str:
    """Excel sheet names: at most 31 characters, unique."""
    title = station[:31]
    n = 2
    while title in used:
        suffix = f"~{n}"
        title = station[: 31 - len(suffix)] + suffix
        n += 1
    used.add(title)
    return title


def _cells(row: list[str | Decimal]) -> list[str | float]:
    # Excel stores numbers as doubles; two decimals of yuan survive that exactly enough.
    return [float(v) if isinstance(v, Decimal) else v for v in row]


def _header(ws: Worksheet, headers: list[str]) -> None:
    ws.append(headers)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"


def _summary(ws: Worksheet, report: MonthReport, mark: bool) -> None:
    _header(ws, ["承担方编号 party", "承担方 party_name", "类型 party_type", "电费 electricity_cny",
                 "水费 water_cny", "合计 total_cny"])  # fmt: skip
    for t in report.party_totals():
        ws.append([
            t.party,
            t.name,
            PARTY_TYPE_ZH.get(t.type, t.type),
            float(t.cost.get("electricity", Decimal(0))),
            float(t.cost.get("water", Decimal(0))),
            float(t.total),
        ])  # fmt: skip
    ws.append([])
    ws.append(["全部站点合计 all stations", "", "", "", "", float(report.total_cost)])
    ws.append(["工会节省 union saving", "", "", "", "", float(report.union_saving)])
    if mark:
        ws.append([])
        ws.append([f"{EXAMPLE_MARK}: 不是正式账单 not a bill (tariff data marked `example`)"])
        ws.cell(ws.max_row, 1).font = Font(bold=True, color="C00000")


def _findings(ws: Worksheet, report: MonthReport) -> None:
    _header(ws, ["站点 station", "设备 device", "代码 code", "说明 label", "详情 message",
                 "时间 time_utc", "数量 quantity"])  # fmt: skip
    for station in report.stations:
        for f in station.findings:
            at = (
                ""
                if f.at_ms is None
                else f"{datetime.fromtimestamp(f.at_ms / 1000, UTC):%Y-%m-%d %H:%M}"
            )
            ws.append([f.station, f.device or "", f.code.value, f.label_zh, f.message, at,
                       "" if f.quantity is None else round(f.quantity, 4)])  # fmt: skip


def write_xlsx(report: MonthReport, path: Path, *, mark_examples: bool = True) -> Path:
    mark = mark_examples and report.example_prices
    wb = Workbook()
    summary = wb.worksheets[0]
    summary.title = "汇总 summary"
    _summary(summary, report, mark)
    used = {summary.title, "发现 findings"}
    headers = [header for header, _ in COLUMNS]
    for station in report.stations:
        ws = wb.create_sheet(_sheet_title(station.station, used))
        _header(ws, headers)
        for util in station.utilities:
            for line in util.lines:
                ws.append(_cells(_row(report, line, mark)))
            unit = util.lines[0].unit if util.lines else ""
            tou = [float(util.tou[p]) if p in util.tou else "" for p in Period]
            ws.append([f"{report.month:%Y-%m}", station.station, station.name, "", "合计 total", "",
                       util.utility.value, float(util.quantity), unit, *tou, float(util.cost), 1.0,
                       "", f"工会节省 union saving {util.union_saving}"])  # fmt: skip
    _findings(wb.create_sheet("发现 findings"), report)
    stamp = datetime(report.month.year, report.month.month, report.month.day)  # noqa: DTZ001
    wb.properties.created = stamp
    wb.properties.modified = stamp
    if mark:
        wb.properties.title = EXAMPLE_MARK
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(_reproducible(buf.getvalue(), stamp))
    return path


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _reproducible(data: bytes, stamp: datetime) -> bytes:
    """The same workbook with every date fixed, so a re-run writes identical bytes.

    openpyxl stamps the document's `modified` with the time of saving whatever
    it was told, and the archive's entries with the time of writing.
    """
    modified = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _MODIFIED.sub(rb"\g<1>" + modified + rb"\g<2>", content)
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, content)
    return out.getvalue()
