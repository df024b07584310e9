"""The month's files: the CSV for machines (UTF-8 with BOM, so Excel reads the Chinese) and the
workbook a clerk files (rules.allocation.workbook).

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
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook

from rules.allocation.compute import PartyLine
from rules.allocation.labels import label
from rules.allocation.report import MonthReport
from rules.allocation.tariff import Period
from rules.allocation.workbook import build_workbook

__all__ = ["COLUMNS", "EXAMPLE_MARK", "csv_period", "export_paths", "write_csv", "write_xlsx"]

# The CSV's mark on every row of a report priced with example prices (a finding-like code).
EXAMPLE_MARK = "example_prices"
# Past this, several stations' ids in a file name give way to a count and a digest.
MAX_STEM_STATIONS = 120

# The CSV is for machines: stable column names (documented in the README and the guide).
COLUMNS = [
    "period", "station", "station_name", "party", "party_name", "party_type", "utility",
    "quantity", "unit", *[f"{p}_kwh" for p in Period], "cost_cny", "share_percent",
    "estimated_percent", "notes",
]  # fmt: skip
HUNDRED = Decimal(100)


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


def csv_period(month: date) -> str:
    """`2026-10-01/2026-10-31`: the month as an ISO 8601 span, text Excel leaves alone.

    Excel turns `2026-10` into 1 October (shown Oct-26); a span it cannot read as a date.
    """
    last = date(month.year + month.month // 12, month.month % 12 + 1, 1) - timedelta(days=1)
    return f"{month:%Y-%m-%d}/{last:%Y-%m-%d}"


def _csv_row(period: str, line: PartyLine, mark: bool) -> list[str]:
    notes = [EXAMPLE_MARK] if mark else []
    notes += [f"{code}@{device}" if device else str(code) for code, device in line.notes]
    return [
        period, line.station, line.station_name, line.party, line.party_name,
        line.party_type, line.utility.value, str(line.quantity), line.unit,
        *[str(line.tou.get(p, "")) for p in Period], str(line.cost),
        str((line.share * HUNDRED).quantize(Decimal("0.01"))),
        str((line.estimated_fraction * HUNDRED).quantize(Decimal("0.01"))), ";".join(notes),
    ]  # fmt: skip


def write_csv(report: MonthReport, path: Path, *, mark_examples: bool = True) -> Path:
    """One row per station, party and utility; with example prices every row's notes say so."""
    mark = mark_examples and report.example_prices
    period = csv_period(report.month)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(
        _csv_row(period, line, mark)
        for station in report.stations
        for util in station.utilities
        for line in util.lines
    )
    path.write_text(buf.getvalue(), encoding="utf-8-sig", newline="")
    return path


def write_xlsx(
    report: MonthReport,
    path: Path,
    *,
    mark_examples: bool = True,
    extra_sheets: Sequence[Callable[[Workbook], None]] = (),
) -> Path:
    """The workbook; `extra_sheets` add theirs after the export's own (the service levels)."""
    mark = mark_examples and report.example_prices
    wb = build_workbook(report, mark=mark)
    for add in extra_sheets:
        add(wb)
    stamp = datetime(report.month.year, report.month.month, report.month.day)  # noqa: DTZ001
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.language = "zh-CN" if report.language == "zh" else "en"
    if mark:
        wb.properties.title = label(report.language, "example")
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
