"""The workbook read back as a clerk's spreadsheet program would: totals, 大写, formats, print.

The month is `export_helpers.sample_report` (four stations, seven kinds of
finding); the amounts are the allocation's, so every total is checked
against the lines it sums, to the fen.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from rules.allocation.capitals import yuan_capitals, yuan_words
from rules.allocation.export import csv_period, write_csv, write_xlsx
from rules.allocation.report import MonthReport
from rules.allocation.sheetstyle import MONEY, PERCENT, QUANTITY, display_width
from rules.allocation.statement import statements
from rules.allocation.tariff import Tariff
from tests.allocation_helpers import own_tariffs
from tests.export_helpers import OCT, sample_report

D = Decimal


@pytest.mark.parametrize(
    ("amount", "capitals"),
    [
        ("1005.20", "壹仟零伍元贰角整"),
        ("0.05", "伍分"),
        ("10.00", "壹拾元整"),
        ("100000.01", "壹拾万元零壹分"),
        ("-100", "负壹佰元整"),
        ("0", "零元整"),
        ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
        ("0.50", "伍角整"),
        ("100500", "壹拾万零伍佰元整"),
        ("1001000", "壹佰万零壹仟元整"),
        ("10010000", "壹仟零壹万元整"),
        ("120013000", "壹亿贰仟零壹万叁仟元整"),
        ("101010101.01", "壹亿零壹佰零壹万零壹佰零壹元零壹分"),
    ],
)
def test_chinese_capitals_as_a_clerk_writes_them(amount: str, capitals: str) -> None:
    assert yuan_capitals(D(amount)) == capitals


def test_capitals_refuse_what_is_not_fen() -> None:
    with pytest.raises(ValueError, match="not an amount in fen"):
        yuan_capitals(D("1.005"))
    assert yuan_words(D("1005.20")) == "one thousand and five yuan twenty fen only"
    assert yuan_words(D("0.05")) == "five fen only"


def test_cjk_counts_double() -> None:
    assert display_width("达川区总工会") == 12
    assert display_width("xiaoge") == 6
    assert display_width("¥1,005.20") == 9


@pytest.fixture(scope="module")
def tariff(tmp_path_factory: pytest.TempPathFactory) -> Tariff:
    [own] = own_tariffs(tmp_path_factory.mktemp("tariffs")).values()
    return own


@pytest.fixture(scope="module")
def month(tariff: Tariff) -> MonthReport:
    return sample_report(tariff, "zh")


def _money(value: object) -> Decimal:
    assert isinstance(value, float | int)
    return D(repr(value)).quantize(D("0.01"))


def _table_ok(ws: Worksheet, header_row: int) -> None:
    """Frozen below its header, a filter over it, the header printed on every A4 page."""
    assert ws.freeze_panes == f"A{header_row + 1}"
    assert ws.auto_filter.ref is not None
    assert ws.auto_filter.ref.startswith(f"A{header_row}:")
    assert (ws.print_title_rows or "").replace("$", "") == f"{header_row}:{header_row}"
    assert str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4 == "9"  # A4
    assert ws.page_setup.fitToWidth == 1
    assert ws.page_setup.fitToHeight == 0
    assert ws.sheet_properties.pageSetUpPr is not None
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    for cell in ws[header_row]:
        if cell.value is not None:
            assert cell.font.b


def _width_fits(ws: Worksheet, column: str, text: str) -> None:
    width = ws.column_dimensions[column].width
    assert width >= display_width(text), (ws.title, column, text, width)


def test_summary_totals_row_equals_its_lines(month: MonthReport, tmp_path: Path) -> None:
    book = openpyxl.load_workbook(write_xlsx(month, tmp_path / "m.xlsx"))
    assert book.sheetnames[0] == "汇总"
    assert book.sheetnames[-2:] == ["明细", "数据说明"]
    ws = book["汇总"]
    _table_ok(ws, 2)
    assert [c.value for c in ws[2]] == ["承担方编号", "承担方", "类型", "电费(元)", "水费(元)",
                                        "合计(元)", "占比"]  # fmt: skip
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    [at] = [i for i, r in enumerate(rows) if r[0] == "合计"]
    parties, total = rows[:at], rows[at]
    assert len(parties) == len(month.party_totals())
    for col in (3, 4, 5):
        assert sum(_money(r[col]) for r in parties) == _money(total[col])
    assert _money(total[5]) == month.total_cost
    assert {r[0]: _money(r[5]) for r in parties} == {t.party: t.total for t in month.party_totals()}
    for n in range(3, 3 + at + 1):
        assert ws.cell(n, 4).number_format == MONEY
        assert ws.cell(n, 7).number_format == PERCENT
    [saving] = [r for r in rows if r[0] == "工会节省(元)"]
    assert _money(saving[5]) == month.union_saving
    for r in parties:
        _width_fits(ws, "B", str(r[1]))  # 翠屏社区服务中心: 16 columns, not 8


def test_a_statement_per_party_with_its_total_in_capitals(
    month: MonthReport, tmp_path: Path
) -> None:
    book = openpyxl.load_workbook(write_xlsx(month, tmp_path / "m.xlsx"))
    sts = statements(month)
    assert [s for s in book.sheetnames if s.startswith("对账单")] == [
        f"对账单 {st.party_name}" for st in sts
    ]
    for st in sts:
        ws = book[f"对账单 {st.party_name}"]
        assert ws["A1"].value == "2026年10月水电费分摊对账单"
        cells = {r[0]: r[1:] for r in ws.iter_rows(values_only=True) if r[0]}
        assert cells["承担方"][0] == st.party_name
        assert cells["账期"][0] == "2026-10-01 至 2026-10-31（当地时间 +08:00）"
        [header] = [i for i, r in enumerate(ws.iter_rows(values_only=True), 1) if r[0] == "站点"]
        _table_ok(ws, header)
        assert [c.value for c in ws[header]] == ["站点", "能源", "时段", "用量", "单位",
                                                 "单价(元)", "金额(元)"]  # fmt: skip
        lines = []
        for r in ws.iter_rows(min_row=header + 1):
            if r[0].value == "合计金额(小写)":
                total_cell = r[6]
                break
            lines.append(r)
            assert r[3].number_format == QUANTITY
            assert r[6].number_format == MONEY
        # The lines add up to the total, which is the party's total in the summary, to the fen.
        total = _money(total_cell.value)
        assert sum(_money(r[6].value) for r in lines) == total
        assert total == next(t.total for t in month.party_totals() if t.party == st.party)
        assert total_cell.number_format == MONEY
        assert cells["合计金额(大写)"][0] == yuan_capitals(total)
        assert "承担方(盖章)：" in cells
        assert "工会(盖章)：" in cells
        # Each station's amounts by period are that station's line, split by quantity × price.
        for r in lines:
            if r[5].value is not None:
                product = _money(r[3].value) * D(repr(r[5].value))
                assert abs(product - _money(r[6].value)) <= D("0.02")
        _width_fits(ws, "A", max((str(r[0].value) for r in lines), key=display_width))


def test_every_finding_that_touched_a_bill_is_on_its_statement(
    month: MonthReport, tmp_path: Path
) -> None:
    book = openpyxl.load_workbook(write_xlsx(month, tmp_path / "m.xlsx"))
    on_statements = "\n".join(
        str(r[0]) for name in book.sheetnames if name.startswith("对账单")
        for r in book[name].iter_rows(values_only=True) if r[0]
    )  # fmt: skip
    assert "驿站 a a-meter，2026-10-13 12:00 +08:00：读数由 1598 降为 0.5" in on_statements
    assert "驿站 b b-meter：总电表本月无读数" in on_statements
    ws = book["数据说明"]
    _table_ok(ws, 2)
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    assert len(rows) == sum(len(s.findings) for s in month.stations)
    # Local time with its offset: the reset at hour 300 of October is the 13th, 12:00 in Dazhou.
    [reset] = [r for r in rows if r[2] == "counter_reset"]
    assert reset[5] == "2026-10-13 12:00 +08:00"


def test_lines_sheet_and_the_csv_for_machines(month: MonthReport, tmp_path: Path) -> None:
    book = openpyxl.load_workbook(write_xlsx(month, tmp_path / "m.xlsx"))
    ws = book["明细"]
    _table_ok(ws, 2)
    headers = [c.value for c in ws[2]]
    amount = headers.index("金额(元)")
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    *lines, total = rows
    assert total[0] == "合计"
    assert sum(_money(r[amount]) for r in lines) == _money(total[amount]) == month.total_cost
    assert ws.cell(3, amount + 1).number_format == MONEY
    assert ws.cell(3, headers.index("占比") + 1).number_format == PERCENT
    assert ws.cell(3, headers.index("用量") + 1).number_format == QUANTITY

    raw = write_csv(month, tmp_path / "m.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert len(table) == len(lines)  # one row per station, party and utility
    assert {r["period"] for r in table} == {csv_period(OCT)} == {"2026-10-01/2026-10-31"}
    assert sum(D(r["cost_cny"]) for r in table) == month.total_cost
    shares: dict[tuple[str, str], Decimal] = {}
    for r in table:
        key = (r["station"], r["utility"])
        shares[key] = shares.get(key, D(0)) + D(r["share_percent"])
    assert all(abs(s - 100) <= D("0.02") for s in shares.values())  # percentages, not fractions
    assert "counter_reset@a-meter" in {n for r in table for n in r["notes"].split(";")}


def test_rerun_writes_identical_bytes(month: MonthReport, tmp_path: Path) -> None:
    a, b = write_xlsx(month, tmp_path / "a.xlsx"), write_xlsx(month, tmp_path / "b.xlsx")
    assert a.read_bytes() == b.read_bytes()


def test_english_workbook(tariff: Tariff, tmp_path: Path) -> None:
    report = sample_report(tariff, "en")
    book = openpyxl.load_workbook(write_xlsx(report, tmp_path / "m.xlsx"))
    assert book.sheetnames[0] == "Summary"
    ws = book[next(n for n in book.sheetnames if n.startswith("Statement"))]
    assert ws["A1"].value == "Utility cost statement, October 2026"
    words = {r[0]: r[1] for r in ws.iter_rows(values_only=True) if r[0]}
    assert str(words["Total in words"]).endswith(" only")
