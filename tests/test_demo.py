"""The demo's whole story in its short mode, with its outputs checked."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from rich.console import Console

from app.demo import run_demo
from app.demo.story import COLD, POWER_CUT, RESET

pytestmark = pytest.mark.integration


def test_short_demo_tells_the_story(tmp_path: Path) -> None:
    out = io.StringIO()
    result = run_demo(
        duration=timedelta(0), workdir=tmp_path, short=True, console=Console(file=out, width=150)
    )
    printed = out.getvalue()

    # Faults injected live: each alert fired once and resolved, at the right station only.
    assert result.fired == {"station_down": {POWER_CUT}, "dispenser_cold": {COLD}}
    assert result.resolved == {"station_down": {POWER_CUT}, "dispenser_cold": {COLD}}
    assert "驿站整体离线" in printed
    assert "饮水机水温不足" in printed

    # The past month's export: every station, parties summing to each station's bill.
    rows = list(csv.DictReader(result.csv.read_text("utf-8-sig").splitlines()))
    stations = {r["station"] for r in rows}
    assert len(stations) == 5
    totals = {(s.station, u.utility.value): u.cost for s in result.report.stations
              for u in s.utilities}  # fmt: skip
    for (station, utility), total in totals.items():
        parties = [D(r["cost_cny"]) for r in rows
                   if r["station"] == station and r["utility"] == utility]  # fmt: skip
        assert sum(parties) == total
        assert total > 0
    union = sum(D(r["cost_cny"]) for r in rows if r["party"] == "dachuan-union")
    assert result.report.union_saving == sum(totals.values()) - union
    assert f"工会节省 ¥{result.report.union_saving:,.2f}" in printed

    # The meter reset in the simulated history is found and named; the station whose meter
    # keeps its own 尖峰平谷 registers is billed from them, and they agree with its total.
    book = openpyxl.load_workbook(result.xlsx)
    findings = list(book["数据说明"].iter_rows(min_row=3, values_only=True))
    names = {s.station: s.name for s in result.report.stations}
    assert sorted((f[0], f[2]) for f in findings) == sorted(
        [(names[RESET], "counter_reset"), (names["dachuan-rider-03"], "meter_tou")]
    )
    # The community centre pays its own sub-metered rooms (registry `policy.devices`).
    centre = [r for r in rows if r["station"] == "dachuan-community-01"
              and r["party"] == "cuiping-centre" and r["utility"] == "electricity"]  # fmt: skip
    assert len(centre) == 1
    assert D(centre[0]["quantity"]) > 0
    assert (tmp_path / "reports").is_dir()


def D(text: str) -> Decimal:  # noqa: N802 - reads like the Decimal it makes
    return Decimal(text)
