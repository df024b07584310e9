"""The service-level scorecard on a hand-worked month, written to a real InfluxDB.

October 2026 in Asia/Shanghai (31 days). Station `hw` is open 07:00-22:00
(15 h a day: 31 x 900 = 27,900 opening minutes), station `hw2` around the
clock (44,640 minutes); both run by `ent`. Every device reports every 5
minutes (timeout 15 minutes) from 09-30 to 11-02, except what follows, each
worked out by hand below:

hw, station (its gateway):
- 10-01: last reading before the month 09-30 23:00, next 10-01 08:00: the
  part inside the month is 00:00-08:00, open 07:00-08:00: 60 min.
- 10-03 10:00 -> 11:00: 60 min, all open.
- 10-03 12:00 -> 12:10: a 10-minute gap, under the timeout: nothing.
- 10-10 21:30 -> 10-11 07:30: one outage through the closed night, open
  21:30-22:00 and 07:00-07:30: 60 min.
- 10-20 23:00 -> 10-21 05:00: wholly while closed: no outage.
  => 3 outages, 180 min, longest 60, mean 60; 100 x (1 - 180/27900) = 99.35.
hw, hot_water (one dispenser):
- cold 10-05 09:00 (first below 80 °C) to 09:10 (first at or above): 10 min,
  shorter than dispenser_cold_for (20 min): nothing.
- cold 10-06 14:00 to 14:30: 30 min, counted whole.
- fault 10-08 21:30 to 23:00 (first reading without): open part 30 min.
  => 2 outages, 60 min, longest 30, mean 30; 100 x (1 - 60/27900) = 99.78.
hw, charging (two lockers; down only while both are):
- L1 faulty 10-12 10:00-12:00, L2 11:00-13:00: both 11:00-12:00, 60 min.
- L1 silent 10-15 09:00 -> 10:00 while L2 works: nothing.
  => 1 outage, 60 min; 99.78.
hw, visits: the door counter's last reading was in September: unreachable
all month => 1 outage of 27,900 min; 0.00.
hw2, station: 10-06 23:00 -> 10-07 01:00 (across a 72-hour query window's
edge) 120 min; 10-31 23:00 -> 11-01 01:00, inside the month 60 min.
  => 2 outages, 180 min, longest 120, mean 90; 100 x (1 - 180/44640) = 99.60.
hw2, charging: its one locker never reported: unreachable all month => 1
outage of 44,640 min; 0.00. hw2 has no door counter, so no visits row.
ent, station: 72,540 opening min, 360 down, 5 outages, longest 120, mean 72;
100 x (1 - 360/72540) = 99.50. ent, charging: 72,540 opening min, 60 + 44,640
= 44,700 down, 2 outages, longest 44,640, mean 22,350; 100 x (1 - 44700/72540)
= 100 x 27840/72540 = 38.3788... = 38.38. Alerts at ent's stations: three
fired, resolved after 35, 590 and 100 min: median 100.

Usage beside it (the allocation's register arithmetic; the month is 744 h,
8,928 five-minute intervals from 10-01 00:00 to 11-01 00:00):

- hw, hot_water: hw-disp's `water_l_total` grows 0.5 l a reading; at 10-20
  12:00 it resets to 0.5 (counted from zero): 8,928 x 0.5 = 4,464 l, noted
  counter_reset. hw-disp2 never reported: counts nothing, noted no_data.
- hw, charging: hw-l1 grows 0.1 kWh a reading but 3.0 kWh across its silent
  hour 10-15 09:00 -> 10:00 (an irregular interval): (8,928 - 12) x 0.1 + 3.0
  = 894.6. hw-l2 grows 0.2 a reading, then is silent 10-31 22:00 -> 11-01
  03:00 and grew 5.0 across it: the month's edge cuts that interval 2 h into
  its 5 h, so 5.0 x 2/5 = 2.0 of it is October's: 0.2 x 8,904 (to 10-31 22:00)
  + 2.0 = 1,782.8, noted gap_bridged (over 3 h). Together 2,677.4 kWh.
- hw, visits: hw-door's `in_total` was 100 at 09-30 12:00 and 3,300 at its next
  reading, 11-01 12:00: 3,200 visits over 768 h, 744 of them in October:
  3,200 x 744/768 = 3,100, noted gap_bridged (both edges interpolated).
- hw2, charging: no figure (no device had data), noted no_data.
- ent: the sums: hot water 4,464 l, charging 2,677.4 kWh, visits 3,100, each
  with its stations' notes. Nothing was estimated (every register read past
  the month's end).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from app.scorecard import MonthlyScorecard, registers_of, scorecard_job
from rules.allocation.command import ReportJob
from rules.allocation.report import run_report
from rules.servicelevel.definitions import Definitions, Service
from rules.servicelevel.export import COLUMNS
from rules.servicelevel.monthly import service_report
from rules.servicelevel.scorecard import ServiceLevel
from tests.allocation_helpers import own_tariffs
from waystation.lineprotocol import encode_line
from waystation.registry import Registry, parse_registry
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
MONTH = date(2026, 10, 1)
STEP = timedelta(minutes=5)


def at(day: int, hh: int, mm: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hh, mm, tzinfo=TZ)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def registry() -> Registry:
    every = {"interval": "5m"}
    return parse_registry({
        "version": 1,
        "timezone": "Asia/Shanghai",
        "tariff": "sichuan-general-commercial",
        "parties": {"union": {"name": "总工会", "type": "union"},
                    "ent": {"name": "甲公司", "type": "enterprise"}},
        "stations": {
            "hw": {"name": "手算站", "model": "enterprise_incubated", "operator": "ent",
                   "opening_hours": "07:00-22:00",
                   "devices": {"hw-gw": {"kind": "gateway"} | every,
                               "hw-disp": {"kind": "water_dispenser"} | every,
                               "hw-disp2": {"kind": "water_dispenser"} | every,
                               "hw-l1": {"kind": "charging_locker"} | every,
                               "hw-l2": {"kind": "charging_locker"} | every,
                               "hw-door": {"kind": "door_counter"} | every,
                               "hw-meter": {"kind": "meter", "utility": "electricity"}}},
            "hw2": {"name": "全天站", "model": "enterprise_incubated", "operator": "ent",
                    "devices": {"hw2-gw": {"kind": "gateway"} | every,
                                "hw2-l1": {"kind": "charging_locker"} | every}},
        },
    })  # fmt: skip


def times(start: datetime, end: datetime, holes: list[tuple[datetime, datetime]]) -> list[datetime]:
    """Every 5 minutes from start to end, but none strictly inside a hole."""
    out, t = [], start
    while t <= end:
        if not any(a < t < b for a, b in holes):
            out.append(t)
        t += STEP
    return out


def inside(t: datetime, a: datetime, b: datetime) -> bool:
    return a <= t < b


def steps(a: datetime, t: datetime) -> int:
    """Five-minute readings from `a` to `t`."""
    return (t - a) // STEP


BEGIN = at(29, 0, month=9)


def l1_kwh(t: datetime) -> float:
    """hw-l1: 0.1 kWh a reading, 3.0 across its silent hour (10-15 09:00 -> 10:00)."""
    return round(200 + 0.1 * steps(BEGIN, t) + (1.8 if t >= at(15, 10) else 0), 4)


def l2_kwh(t: datetime) -> float:
    """hw-l2: 0.2 kWh a reading, 5.0 across its silent five hours (10-31 22:00 -> 11-01 03:00)."""
    quiet, back = at(31, 22), at(1, 3, month=11)
    if t <= quiet:
        return round(500 + 0.2 * steps(BEGIN, t), 4)
    return round(500 + 0.2 * steps(BEGIN, quiet) + 5.0 + 0.2 * steps(back, t), 4)


def lines() -> list[str]:
    begin, end = BEGIN, at(2, 0, month=11)
    out: list[str] = []

    def put(kind: str, station: str, device: str, ts: list[datetime], fields: object) -> None:
        for seq, t in enumerate(ts):
            data = fields(t) if callable(fields) else {}
            out.append(encode_line(kind, {"station": station, "device": device},
                                   {"seq": seq, **data}, ms(t)))  # fmt: skip

    put("gateway", "hw", "hw-gw", times(begin, end, [
        (at(30, 23, month=9), at(1, 8)), (at(3, 10), at(3, 11)), (at(3, 12), at(3, 12, 10)),
        (at(10, 21, 30), at(11, 7, 30)), (at(20, 23), at(21, 5)),
    ]), None)  # fmt: skip

    def dispenser(t: datetime) -> dict[str, object]:
        cold = inside(t, at(5, 9), at(5, 9, 10)) or inside(t, at(6, 14), at(6, 14, 30))
        # 0.5 l a reading; reset at 10-20 12:00 to the 0.5 l since the reading before.
        water = 0.5 * steps(at(20, 11, 55), t) if t >= at(20, 12) else 1000 + 0.5 * steps(begin, t)
        data: dict[str, object] = {"temp_c": 60.5 if cold else 92.0, "heating": True,
                                   "water_l_total": water, "energy_kwh_total": 1.0}  # fmt: skip
        if inside(t, at(8, 21, 30), at(8, 23)):
            data["fault"] = "E3"
        return data

    put("water_dispenser", "hw", "hw-disp", times(begin, end, []), dispenser)

    def locker(a: datetime, b: datetime, kwh: Callable[[datetime], float]) -> object:
        return lambda t: {"slots": 8, "slots_in_use": 1, "energy_kwh_total": kwh(t),
                          "fault_slots": 2 if inside(t, a, b) else 0}  # fmt: skip

    put("charging_locker", "hw", "hw-l1", times(begin, end, [(at(15, 9), at(15, 10))]),
        locker(at(12, 10), at(12, 12), l1_kwh))  # fmt: skip
    put("charging_locker", "hw", "hw-l2", times(begin, end, [(at(31, 22), at(1, 3, month=11))]),
        locker(at(12, 11), at(12, 13), l2_kwh))  # fmt: skip
    door = [*times(begin, at(30, 12, month=9), []), at(1, 12, month=11)]
    put("door_counter", "hw", "hw-door", door,
        lambda t: {"in_total": 3300 if t.month == 11 else 100, "out_total": 5})  # fmt: skip
    put("gateway", "hw2", "hw2-gw", times(begin, end, [
        (at(6, 23), at(7, 1)), (at(31, 23), at(1, 1, month=11))]), None)  # fmt: skip
    # The rules service's alert history: fired, then resolved 35, 590 and 100 minutes later.
    for station, fired, resolved in [
        ("hw", at(3, 10, 15), at(3, 10, 50)),
        ("hw", at(10, 21, 50), at(11, 7, 40)),
        ("hw2", at(6, 23, 10), at(7, 0, 50)),
    ]:
        for t, active in ((fired, 1), (resolved, 0)):
            out.append(encode_line("alert", {"station": station, "device": "-",
                                             "rule": "agent_offline"},
                                   {"state": "firing" if active else "resolved",
                                    "active": active, "severity": "critical",
                                    "message": "m"}, ms(t)))  # fmt: skip
    return out


def figures(row: ServiceLevel) -> tuple[object, ...]:
    mttr = None if row.mttr_ms is None else (row.mttr_ms / 60_000).quantize(Decimal("0.01"))
    return (row.station, row.service.value, row.availability_pct, row.outages,
            row.down_ms / 60_000, row.longest_ms / 60_000, mttr, row.opening_ms / 60_000)  # fmt: skip


def usage(row: ServiceLevel) -> tuple[object, ...] | None:
    u = row.usage
    return None if u is None else (u.quantity, u.unit, u.estimated, u.notes)


def write_month(store: InfluxStore) -> None:
    for i in range(0, len(batch := lines()), 5000):
        store.write_lines(batch[i : i + 5000])


NOW = datetime(2026, 11, 5, tzinfo=UTC)
d = Decimal
# Worked by hand in the module's docstring; the allocation measures at 0.0001.
HOT_WATER = (d("4464.0000"), "l", d(0), (("counter_reset", "hw-disp"), ("no_data", "hw-disp2")))
CHARGING = (d("2677.4000"), "kWh", d(0), (("gap_bridged", "hw-l2"),))
VISITS = (d("3100.0000"), "visits", d(0), (("gap_bridged", "hw-door"),))
HW2_CHARGING = (None, "kWh", d(0), (("no_data", "hw2-l1"),))


def test_every_figure_of_the_hand_worked_month(store: InfluxStore, tmp_path: Path) -> None:
    write_month(store)
    reg = registry()
    allocation = run_report(reg, own_tariffs(tmp_path), store, MONTH, now=NOW)
    report = service_report(store, reg, Definitions(), MONTH, now=NOW,
                            usage=registers_of(allocation))  # fmt: skip
    assert [figures(r) for r in report.stations] == [
        ("hw", "station", d("99.35"), 3, 180, 60, d("60.00"), 27900),
        ("hw", "hot_water", d("99.78"), 2, 60, 30, d("30.00"), 27900),
        ("hw", "charging", d("99.78"), 1, 60, 60, d("60.00"), 27900),
        ("hw", "visits", d("0.00"), 1, 27900, 27900, d("27900.00"), 27900),
        ("hw2", "station", d("99.60"), 2, 180, 120, d("90.00"), 44640),
        ("hw2", "charging", d("0.00"), 1, 44640, 44640, d("44640.00"), 44640),
    ]
    assert [usage(r) for r in report.stations] == [
        None, HOT_WATER, CHARGING, VISITS, None, HW2_CHARGING,
    ]  # fmt: skip
    assert [figures(r) for r in report.operators] == [
        ("*", "station", d("99.50"), 5, 360, 120, d("72.00"), 72540),
        ("*", "hot_water", d("99.78"), 2, 60, 30, d("30.00"), 27900),
        ("*", "charging", d("38.38"), 2, 44700, 44640, d("22350.00"), 72540),
        ("*", "visits", d("0.00"), 1, 27900, 27900, d("27900.00"), 27900),
    ]
    ent_charging = (CHARGING[0], "kWh", d(0), (("gap_bridged", "hw-l2"), ("no_data", "hw2-l1")))
    assert [usage(r) for r in report.operators] == [None, HOT_WATER, ent_charging, VISITS]
    assert {r.operator for r in report.operators} == {"ent"}
    for row in report.operators:
        assert row.alerts is not None
        assert (row.alerts.fired, row.alerts.median_resolve_ms) == (3, 100 * 60_000)
    assert Service.STATION in {r.service for r in report.stations}
    # Without the allocation's figures the rows carry no usage: none is made up.
    bare = service_report(store, reg, Definitions(), MONTH, now=NOW)
    assert all(r.usage is None for r in bare.rows)


def report_job(store: InfluxStore, out: Path, stations: list[str] | None = None) -> ReportJob:
    """The month's report as `waystation report` wires it: the scorecard after the allocation."""
    scorecard = scorecard_job(registry(), store, out, None, stations=stations)
    scorecard.job.clock = lambda: NOW
    return ReportJob(registry(), own_tariffs(out / "own"), store, out, stations,
                     extras=[scorecard])  # fmt: skip


def service_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, for Excel
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_the_exports_carry_the_same_figures(store: InfluxStore, tmp_path: Path) -> None:
    write_month(store)
    job = report_job(store, tmp_path)
    job.run(MONTH)
    scorecard = job.extras[0]
    assert isinstance(scorecard, MonthlyScorecard)
    path = tmp_path / "service-2026-10.csv"
    assert scorecard.job.last_path == path
    rows = service_rows(path)
    assert rows[0] == [key for _, key in COLUMNS]
    assert rows[0][-4:] == ["usage", "usage_unit", "usage_estimated", "usage_notes"]
    assert rows[1] == ["2026-10", "hw", "手算站", "ent", "station", "99.35", "3",
                       "180.00", "60.00", "60.00", "27900.00", "", "", "", "", "", ""]  # fmt: skip
    assert [r[4:5] + r[-4:] for r in rows[2:7]] == [
        ["hot_water", "4464.00", "l", "0.00", "counter_reset@hw-disp;no_data@hw-disp2"],
        ["charging", "2677.40", "kWh", "0.00", "gap_bridged@hw-l2"],
        ["visits", "3100.00", "visits", "0.00", "gap_bridged@hw-door"],
        ["station", "", "", "", ""],
        ["charging", "", "kWh", "0.00", "no_data@hw2-l1"],
    ]
    assert rows[-4] == ["2026-10", "*", "", "ent", "station", "99.50", "5", "360.00",
                        "120.00", "72.00", "72540.00", "3", "100.00", "", "", "", ""]  # fmt: skip
    assert [r[4:5] + r[-4:] for r in rows[-3:]] == [
        ["hot_water", "4464.00", "l", "0.00", "counter_reset@hw-disp;no_data@hw-disp2"],
        ["charging", "2677.40", "kWh", "0.00", "gap_bridged@hw-l2;no_data@hw2-l1"],
        ["visits", "3100.00", "visits", "0.00", "gap_bridged@hw-door"],
    ]
    assert len(rows) == 1 + 6 + 4
    again = path.read_bytes()
    job.run(MONTH)
    assert path.read_bytes() == again  # a re-run writes the same bytes
    # The workbook's sheet, in the registry's language (zh), the workbook's table style.
    sheet = load_workbook(tmp_path / "allocation-2026-10.xlsx")["服务水平"]
    assert sheet["A1"].value == "2026-10 服务水平"
    assert [c.value for c in sheet[2]][:3] == ["月份", "站点编号", "站点名称"]
    assert [c.value for c in sheet[2]][-4:] == ["用量", "用量单位", "其中估算", "用量说明"]
    assert [c.value for c in sheet[3]][:6] == ["2026-10", "hw", "手算站", "ent", "驿站在线", 99.35]
    assert sheet.cell(3, 6).number_format == "0.00"
    assert [c.value for c in sheet[4]][-4:] == [
        4464,
        "升",
        0,
        "计数器清零(hw-disp)；无数据(hw-disp2)",
    ]
    assert sheet.cell(4, 14).number_format == "0.00"
    assert [c.value for c in sheet[8]][-4:] == [None, "千瓦时", 0, "无数据(hw2-l1)"]
    [series] = store.query(
        'SELECT "availability_pct", "outages", "down_minutes" FROM "service_level" '
        "WHERE \"station\" = '*' AND \"service\" = 'station'"
    )
    assert series.values == [[ms(at(1, 0)), 99.5, 5, 360.0]]
    measured = {s.tags["station"]: s.values for s in store.query(
        'SELECT "usage", "usage_unit", "usage_estimated", "usage_notes" FROM "service_level" '
        "WHERE \"service\" = 'charging' GROUP BY \"station\"")}  # fmt: skip
    stamp = ms(at(1, 0))
    assert measured == {
        "hw": [[stamp, 2677.4, "kWh", 0.0, "gap_bridged@hw-l2"]],
        "hw2": [[stamp, None, "kWh", 0.0, "no_data@hw2-l1"]],
        "*": [[stamp, 2677.4, "kWh", 0.0, "gap_bridged@hw-l2;no_data@hw2-l1"]],
    }
    [series] = store.query(
        'SELECT "outages", "usage_unit" FROM "service_level" WHERE "service" = \'station\''
    )
    assert [row[2] for row in series.values] == [None] * 3  # a gateway has no usage


def test_a_report_of_one_station_sums_only_its_usage(store: InfluxStore, tmp_path: Path) -> None:
    write_month(store)
    report_job(store, tmp_path, ["hw"]).run(MONTH)
    rows = service_rows(tmp_path / "service-2026-10-hw.csv")
    # ent's charging over hw alone: hw2's silent locker is neither summed nor noted.
    assert [r[1:2] + r[4:6] + r[-4:] for r in rows[1:]] == [
        ["hw", "station", "99.35", "", "", "", ""],
        ["hw", "hot_water", "99.78", "4464.00", "l", "0.00", "counter_reset@hw-disp;no_data@hw-disp2"],
        ["hw", "charging", "99.78", "2677.40", "kWh", "0.00", "gap_bridged@hw-l2"],
        ["hw", "visits", "0.00", "3100.00", "visits", "0.00", "gap_bridged@hw-door"],
        ["*", "station", "99.35", "", "", "", ""],
        ["*", "hot_water", "99.78", "4464.00", "l", "0.00", "counter_reset@hw-disp;no_data@hw-disp2"],
        ["*", "charging", "99.78", "2677.40", "kWh", "0.00", "gap_bridged@hw-l2"],
        ["*", "visits", "0.00", "3100.00", "visits", "0.00", "gap_bridged@hw-door"],
    ]  # fmt: skip
