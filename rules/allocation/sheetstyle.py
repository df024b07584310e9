"""How every table of the workbook looks and prints: formats, widths, header, filter, A4.

A table is a header row and the rows below it; `finish_table` gives it a bold
shaded header, frozen panes below it, a filter over it, the header repeated
on every printed page, and `fit_widths` sizes the columns to what they show
(a CJK character is two columns wide, as Excel draws it).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

__all__ = [
    "MONEY",
    "PERCENT",
    "PRICE",
    "QUANTITY",
    "display_width",
    "finish_table",
    "fit_width",
    "fit_widths",
    "print_setup",
]

MONEY = "¥#,##0.00"
PERCENT = "0.00%"
QUANTITY = "0.00"
PRICE = "0.0000"
MIN_WIDTH = 6
MAX_WIDTH = 60  # longer text wraps in its cell
HEADER_FILL = PatternFill("solid", start_color="DDEBF7", end_color="DDEBF7")
THIN = Side(style="thin", color="A6A6A6")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)


def display_width(text: str) -> int:
    """Columns `text` takes in Excel's default font: 2 for a wide (CJK) character, else 1."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


_NUMBER_SHOWN: dict[str, Callable[[float], str]] = {
    MONEY: lambda v: f"¥{v:,.2f}",
    PERCENT: lambda v: f"{v * 100:.2f}%",
    PRICE: lambda v: f"{v:.4f}",
    QUANTITY: lambda v: f"{v:,.2f}",
}


def _shown(cell: Cell) -> str:
    """The text a cell shows, near enough to size its column."""
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        shown = _NUMBER_SHOWN.get(cell.number_format)
        return shown(float(value)) if shown else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    return str(value)


def fit_widths(ws: Worksheet, rows: Iterable[int]) -> None:
    """Each column as wide as the widest of these rows shows it (plus a margin), within limits."""
    widths: dict[int, int] = {}
    for r in rows:
        for cell in ws[r]:
            if not isinstance(cell, Cell):  # the merged parts of a title
                continue
            width = display_width(_shown(cell))
            if width > MAX_WIDTH:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            widths[cell.column] = max(widths.get(cell.column, 0), width)
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = _fitted(width)


def _fitted(width: int) -> int:
    # A tenth more for bold labels and fonts wider than Calibri, and a margin.
    return min(MAX_WIDTH, max(MIN_WIDTH, math.ceil(width * 1.1) + 2))


def fit_width(text: str) -> int:
    """The column width that shows `text`, as `fit_widths` sizes one."""
    return _fitted(display_width(text))


def print_setup(ws: Worksheet, *, landscape: bool = False) -> None:
    """A4, fitted to the page's width (as many pages down as it takes), centred."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.5


def finish_table(ws: Worksheet, header_row: int, last_row: int, columns: int) -> None:
    """Header styled and frozen, a filter over the table, the header on every printed page."""
    for cell in ws[header_row][:columns]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.border = BOX
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    last = get_column_letter(columns)
    ws.freeze_panes = ws.cell(header_row + 1, 1).coordinate
    ws.auto_filter.ref = f"A{header_row}:{last}{max(last_row, header_row)}"
    ws.print_title_rows = f"{header_row}:{header_row}"
    for row in ws.iter_rows(min_row=header_row + 1, max_row=last_row, max_col=columns):
        for cell in row:
            cell.border = BOX
