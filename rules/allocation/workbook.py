"""The workbook a finance clerk files as it is: summary, lines, a statement per party, findings.

Every label is in the report's language. Every table has a styled, frozen
header with a filter, fitted widths and A4 print setup (`sheetstyle`); money
is `¥#,##0.00`, shares `0.00%`, quantities `0.00`. Other parts add their own
sheets with `table_sheet`, so they look and print the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.worksheet.worksheet import Worksheet

from rules.allocation.capitals import yuan_capitals, yuan_words
from rules.allocation.compute import PartyLine
from rules.allocation.findings import Finding
from rules.allocation.labels import PARTY_TYPES, PERIODS, UTILITIES, label
from rules.allocation.report import MonthReport, month_window
from rules.allocation.sheetstyle import (
    MONEY,
    PERCENT,
    PRICE,
    QUANTITY,
    finish_table,
    fit_width,
    fit_widths,
    print_setup,
)
from rules.allocation.statement import Statement, statements
from rules.allocation.tariff import Period
from rules.allocation.wording import finding_label, finding_text
from waystation.language import Language, unit_text
from waystation.localtime import local_text, offset_text

__all__ = ["Cell", "build_workbook", "finding_line", "month_span", "table_sheet"]

Cell = str | int | float | Decimal | None
TITLE_FONT = Font(bold=True, size=14)
RED = Font(bold=True, color="C00000")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _number(value: Cell) -> Cell:
    # Excel keeps numbers as doubles; amounts in fen survive that exactly enough to show.
    return float(value) if isinstance(value, Decimal) else value


def sheet_title(wb: Workbook, wanted: str) -> str:
    """A sheet name Excel takes: no []:*?/\\, at most 31 characters, unique in the workbook."""
    base = _BAD_SHEET_CHARS.sub("_", wanted)[:31]
    title, n = base, 2
    while title in wb.sheetnames:
        suffix = f"~{n}"
        title = base[: 31 - len(suffix)] + suffix
        n += 1
    return title


def table_sheet(
    wb: Workbook,
    name: str,
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    formats: dict[int, str],
    totals: Sequence[Cell] | None = None,
    landscape: bool = False,
) -> Worksheet:
    """A sheet holding one table under a title: formats by column index (0-based).

    The totals row, if any, follows the table outside its filter, in bold.
    """
    ws: Worksheet = wb.create_sheet(sheet_title(wb, name))
    ws.append([title])
    ws.cell(1, 1).font = TITLE_FONT
    ws.append(list(headers))
    for row in rows:
        ws.append([_number(v) for v in row])
    last = ws.max_row
    if totals is not None:
        ws.append([_number(v) for v in totals])
        for cell in ws[ws.max_row]:
            cell.font = Font(bold=True)
            cell.border = Border(top=Side(style="double"))
    for r in range(3, ws.max_row + 1):
        for i, fmt in formats.items():
            ws.cell(r, i + 1).number_format = fmt
    finish_table(ws, 2, last, len(headers))
    fit_widths(ws, range(2, ws.max_row + 1))
    print_setup(ws, landscape=landscape)
    return ws


def month_span(month: date, zone: str, language: Language) -> str:
    """`2026-10-01 至 2026-10-31`, with the zone's offset: the month as the statements bill it."""
    window = month_window(month, ZoneInfo(zone))
    last = datetime.fromtimestamp(window.end_ms / 1000 - 1, ZoneInfo(zone))
    start = datetime.fromtimestamp(window.start_ms / 1000, ZoneInfo(zone))
    return label(language, "month_span", start=f"{start:%Y-%m-%d}", end=f"{last:%Y-%m-%d}",
                 offset=offset_text(start))  # fmt: skip


def _summary(wb: Workbook, report: MonthReport, mark: bool) -> None:
    lang = report.language
    totals = report.party_totals()
    grand = report.total_cost
    rows: list[list[Cell]] = [
        [t.party, t.name, PARTY_TYPES[lang].get(t.type, t.type),
         t.cost.get("electricity", Decimal(0)), t.cost.get("water", Decimal(0)), t.total,
         t.total / grand if grand else Decimal(0)]
        for t in totals
    ]  # fmt: skip
    elec = sum((r[3] for r in rows if isinstance(r[3], Decimal)), Decimal(0))
    water = sum((r[4] for r in rows if isinstance(r[4], Decimal)), Decimal(0))
    headers = [label(lang, k) for k in ("party_id", "party", "party_type", "electricity_cost",
                                         "water_cost", "total_cost", "share")]  # fmt: skip
    ws = table_sheet(
        wb, label(lang, "sheet_summary"),
        label(lang, "summary_title", year=report.month.year, month=report.month.month),
        headers, rows, formats={3: MONEY, 4: MONEY, 5: MONEY, 6: PERCENT},
        totals=[label(lang, "total"), None, None, elec, water, grand, 1 if grand else 0],
    )  # fmt: skip
    ws.append([])
    ws.append([label(lang, "union_saving"), None, None, None, None, float(report.union_saving)])
    ws.cell(ws.max_row, 6).number_format = MONEY
    ws.append([label(lang, "month"), month_span(report.month, report.timezone, lang)])
    if mark:
        ws.append([label(lang, "example")])
        ws.cell(ws.max_row, 1).font = RED


def _line_row(line: PartyLine, lang: Language, periods: list[Period]) -> list[Cell]:
    notes = ("；" if lang == "zh" else "; ").join(
        finding_label(code, lang) + (f"({device})" if device else "") for code, device in line.notes
    )
    return [
        line.station, line.station_name, line.party, line.party_name,
        PARTY_TYPES[lang].get(line.party_type, line.party_type), UTILITIES[lang][line.utility],
        line.quantity, unit_text(line.unit, lang), *[line.tou.get(p) for p in periods],
        line.cost, line.share, line.estimated_fraction, notes,
    ]  # fmt: skip


def _lines(wb: Workbook, report: MonthReport) -> None:
    lang = report.language
    all_lines = [ln for s in report.stations for u in s.utilities for ln in u.lines]
    periods = [p for p in Period if any(p in ln.tou for ln in all_lines)]
    kwh = unit_text("kWh", lang)
    headers = [
        *[label(lang, k) for k in ("station_id", "station", "party_id", "party", "party_type",
                                   "utility", "quantity", "unit")],
        *[f"{PERIODS[lang][p]}({kwh})" if lang == "zh" else f"{PERIODS[lang][p]} ({kwh})"
          for p in periods],
        *[label(lang, k) for k in ("amount", "share", "estimated", "notes")],
    ]  # fmt: skip
    n = len(periods)
    formats = {6: QUANTITY, **{8 + i: QUANTITY for i in range(n)}, 8 + n: MONEY,
               9 + n: PERCENT, 10 + n: PERCENT}  # fmt: skip
    totals: list[Cell] = [label(lang, "total"), *[None] * (7 + n), report.total_cost]
    table_sheet(
        wb, label(lang, "sheet_lines"),
        label(lang, "summary_title", year=report.month.year, month=report.month.month),
        headers, [_line_row(ln, lang, periods) for ln in all_lines], formats=formats,
        totals=totals, landscape=True,
    )  # fmt: skip


def _findings(wb: Workbook, report: MonthReport) -> None:
    lang = report.language
    rows: list[list[Cell]] = []
    for station in report.stations:
        tz = ZoneInfo(station.timezone)
        for f in station.findings:
            at = "" if f.at_ms is None else local_text(f.at_ms, tz)
            rows.append([station.name, f.device or "", f.code.value, finding_label(f.code, lang),
                         finding_text(f, lang, tz), at, f.quantity])  # fmt: skip
    headers = [label(lang, k) for k in ("station", "device", "code", "finding", "detail",
                                         "time", "quantity")]  # fmt: skip
    table_sheet(
        wb, label(lang, "sheet_findings"),
        label(lang, "summary_title", year=report.month.year, month=report.month.month),
        headers, rows, formats={6: QUANTITY}, landscape=True,
    )  # fmt: skip


def finding_line(f: Finding, station_name: str, zone: str, lang: Language) -> str:
    """One finding on a statement: where, when (in the station's zone), what."""
    tz = ZoneInfo(zone)
    where = " ".join(p for p in (station_name, f.device) if p)
    if f.at_ms is not None and not any(name.endswith("_at") for name, _ in f.args):
        where += ("，" if lang == "zh" else ", ") + local_text(f.at_ms, tz)
    return where + ("：" if lang == "zh" else ": ") + finding_text(f, lang, tz)


def _underline(ws: Worksheet, row: int, columns: range) -> None:
    for c in columns:
        ws.cell(row, c).border = Border(bottom=Side(style="thin"))


def _statement(wb: Workbook, report: MonthReport, st: Statement, mark: bool) -> None:
    lang = report.language
    ws = wb.create_sheet(sheet_title(wb, f"{label(lang, 'sheet_statement')} {st.party_name}"))
    ws.append([label(lang, "title", year=report.month.year, month=report.month.month)])
    ws.merge_cells("A1:G1")
    ws.cell(1, 1).font = TITLE_FONT
    ws.cell(1, 1).alignment = Alignment(horizontal="center")
    for key, value in (("party", st.party_name),
                       ("party_type", PARTY_TYPES[lang].get(st.party_type, st.party_type)),
                       ("month", month_span(report.month, report.timezone, lang))):  # fmt: skip
        ws.append([label(lang, key), value])
        ws.merge_cells(start_row=ws.max_row, start_column=2, end_row=ws.max_row, end_column=7)
        ws.cell(ws.max_row, 1).font = Font(bold=True)
    ws.append([label(lang, "example")] if mark else [])
    if mark:
        ws.cell(ws.max_row, 1).font = RED
    ws.append([label(lang, k) for k in ("station", "utility", "period", "quantity", "unit",
                                         "price", "amount")])  # fmt: skip
    header = ws.max_row
    for ln in st.lines:
        period = (
            PERIODS[lang][ln.period]
            if ln.period
            else (label(lang, "water_period") if ln.utility == "water" else "")
        )
        ws.append([ln.station_name, UTILITIES[lang][ln.utility], period, float(ln.quantity),
                   unit_text(ln.unit, lang), _number(ln.price), float(ln.amount)])  # fmt: skip
        r = ws.max_row
        ws.cell(r, 4).number_format = QUANTITY
        ws.cell(r, 6).number_format = PRICE
        ws.cell(r, 7).number_format = MONEY
    last = ws.max_row
    finish_table(ws, header, last, 7)
    ws.append([label(lang, "total_figures"), None, None, None, None, None, float(st.total)])
    ws.cell(ws.max_row, 7).number_format = MONEY
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
        cell.border = Border(top=Side(style="double"))
    words = yuan_capitals(st.total) if lang == "zh" else yuan_words(st.total)
    ws.append([label(lang, "total_words"), words])
    ws.merge_cells(start_row=ws.max_row, start_column=2, end_row=ws.max_row, end_column=7)
    ws.cell(ws.max_row, 1).font = Font(bold=True)
    ws.cell(ws.max_row, 2).font = Font(bold=True)
    fit_widths(ws, range(header, last + 2))  # the table and its total (the words span B:G)
    words_label = fit_width(label(lang, "total_words"))
    ws.column_dimensions["A"].width = max(ws.column_dimensions["A"].width or 0, words_label)
    ws.append([])
    ws.append([label(lang, "findings_here")])
    ws.cell(ws.max_row, 1).font = Font(bold=True)
    names = {s.station: s.name for s in report.stations}
    for f in st.findings:
        ws.append([finding_line(f, names.get(f.station, f.station), st.zone_of[f.station], lang)])
    if not st.findings:
        ws.append([label(lang, "no_findings")])
    ws.append([label(lang, "rounding")])
    ws.append([])
    for who in ("sign_party", "sign_union"):
        ws.append([])
        ws.append([label(lang, who), None, None, label(lang, "sign_person"), None,
                   label(lang, "sign_date")])  # fmt: skip
        ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=2)
        for column in (3, 5, 7):  # a line to write on after each label
            _underline(ws, ws.max_row, range(column, column + 1))
    print_setup(ws)


def build_workbook(report: MonthReport, *, mark: bool) -> Workbook:
    """The month's workbook; `mark`: its prices are examples, and every sheet says so."""
    wb = Workbook()
    wb.remove(wb.worksheets[0])
    _summary(wb, report, mark)
    for st in statements(report):
        _statement(wb, report, st, mark)
    _lines(wb, report)
    _findings(wb, report)
    return wb
