"""The monthly job: on the 1st at 02:00 local time, the month before is allocated."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from apscheduler.schedulers.background import BackgroundScheduler

from app.localservers import InfluxServer, MosquittoServer
from app.monthly import serve
from ingest.worker import IngestConfig, IngestWorker
from rules.allocation.command import ReportJob, schedule_allocation
from rules.allocation.report import AllocationError, month_window, previous_month
from rules.allocation.schedule import JOB_ID, MonthlyTrigger, add_catch_up, add_monthly_job
from rules.allocation.tariff import shipped_tariffs
from rules.outage.config import RulesConfig
from rules.outage.service import RulesService
from tests.allocation_helpers import (
    PARTIES,
    backfill_month,
    days_of_history,
    district,
    own_tariff_dir,
    own_tariffs,
    station_entry,
)
from tests.helpers import wait_for
from tests.rules_peers import RulesProcess
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("today", "month"),
    [(date(2026, 11, 24), date(2026, 10, 1)), (date(2027, 1, 1), date(2026, 12, 1))],
)
def test_previous_month(today: date, month: date) -> None:
    assert previous_month(today) == month


def test_job_fires_on_the_first_at_two_in_the_station_zone() -> None:
    calls: list[date] = []
    scheduler = BackgroundScheduler()
    job = add_monthly_job(
        scheduler, calls.append, [SHANGHAI], clock=lambda: datetime(2027, 1, 1, 2, tzinfo=SHANGHAI)
    )
    after = datetime(2026, 11, 24, 12, tzinfo=SHANGHAI)
    first = job.trigger.get_next_fire_time(None, after)
    assert first == datetime(2026, 12, 1, 2, tzinfo=SHANGHAI)
    assert job.trigger.get_next_fire_time(first, first.replace(minute=1)) == datetime(
        2027, 1, 1, 2, tzinfo=SHANGHAI
    )
    job.func()
    assert calls == [date(2026, 12, 1)]


def test_stations_west_of_the_registry_wait_for_their_own_two_o_clock() -> None:
    """A Berlin station in a Shanghai registry: at 02:00 Shanghai its month is not over."""
    berlin, urumqi = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Urumqi")
    trigger = MonthlyTrigger([SHANGHAI, berlin, urumqi])
    fire = trigger.get_next_fire_time(None, datetime(2026, 10, 20, tzinfo=SHANGHAI))
    assert fire == datetime(2026, 11, 1, 2, tzinfo=berlin)  # 09:00 in Shanghai
    # Every station's October has been over for two hours or more (Berlin's is 25 h long).
    for zone in (SHANGHAI, berlin, urumqi):
        assert month_window(date(2026, 10, 1), zone).end_ms + 2 * 3_600_000 <= (
            fire.timestamp() * 1000
        )
    # Berlin is on summer time in June: its 02:00 on 1 July is at UTC+2.
    assert trigger.run_time(date(2026, 6, 1)) == datetime(2026, 7, 1, 2, tzinfo=berlin)
    assert trigger.due_month(fire) == date(2026, 10, 1)
    assert trigger.due_month(fire - timedelta(seconds=1)) == date(2026, 9, 1)


@pytest.mark.parametrize(
    ("zone", "now", "due"),
    [
        ("Asia/Shanghai", (2026, 12, 1, 2, 30), date(2026, 11, 1)),
        ("Asia/Shanghai", (2026, 12, 1, 1, 30), date(2026, 10, 1)),
        ("Asia/Shanghai", (2026, 11, 30, 20, 55), date(2026, 10, 1)),
        ("Pacific/Kiritimati", (2026, 12, 1, 2, 19), date(2026, 11, 1)),  # UTC+14
        ("America/Los_Angeles", (2026, 12, 1, 2, 5), date(2026, 11, 1)),
    ],
)
def test_a_service_starting_after_two_on_the_first_catches_the_month_up(
    zone: str, now: tuple[int, int, int, int, int], due: date
) -> None:
    """The review's case: started at 02:19 on 1 December (UTC+14), November was never billed."""
    tz = ZoneInfo(zone)
    calls: list[date] = []
    scheduler = BackgroundScheduler()
    scheduler.start()
    try:
        local = datetime(*now, tzinfo=tz)
        job = add_monthly_job(scheduler, calls.append, [tz], clock=lambda: local)
        assert add_catch_up(scheduler, calls.append, [tz], lambda: local) == due
        wait_for(lambda: calls == [due], f"the catch-up of {due:%Y-%m}")
        # Without the catch-up, the first run would have been the next month's.
        upcoming = job.trigger.get_next_fire_time(None, local)
        assert upcoming > local
        assert job.trigger.due_month(upcoming) == date(due.year + due.month // 12,
                                                       due.month % 12 + 1, 1)  # fmt: skip
    finally:
        scheduler.shutdown()


def test_the_monthly_job_refuses_example_prices(tmp_path: Path) -> None:
    registry = district(a=station_entry("a", "enterprise_incubated"))
    store = InfluxStore("http://127.0.0.1:1", "never-queried")
    job = ReportJob(registry, shipped_tariffs(), store, tmp_path)
    with pytest.raises(AllocationError) as info:
        schedule_allocation(BackgroundScheduler(), job)
    assert "tariff sichuan-general-commercial holds EXAMPLE prices" in str(info.value)
    assert "示例价格" in str(info.value)
    # Even a job made by hand, run as the scheduled one, refuses before reading anything.
    with pytest.raises(AllocationError, match="EXAMPLE prices"):
        replace(job, scheduled=True).run(date(2026, 1, 1))
    assert not any(tmp_path.iterdir())


@pytest.mark.integration
def test_a_restarted_rules_service_allocates_the_missed_month_once(
    store: InfluxStore, tmp_path: Path, mqtt_settings: MqttSettings, uid: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Started after 02:00 on the 1st (a deploy, a reboot): the month is billed at start.

    Before, the job's next run was the following month's, and this month was never billed.
    A month already allocated (its export, or its `allocation` points) is not redone.
    """
    station = f"a{uid}"
    registry = district(**{station: station_entry(station, "enterprise_incubated")})
    # The month the catch-up bills: before 02:00 on the 1st that is the one before last.
    month = MonthlyTrigger([SHANGHAI]).due_month(datetime.now(UTC))
    window = month_window(month, SHANGHAI)
    days = days_of_history(window, datetime.now(SHANGHAI))
    ingest = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/{station}/+/+")
    with IngestWorker(mqtt_settings, store, registry, ingest) as worker:
        assert worker.wait_subscribed()
        published = backfill_month(registry, station, mqtt_settings, tmp_path / "o.db", days)
        wait_for(lambda: worker.stats.points_written >= published, "ingest to catch up", 60)
    tariffs = own_tariffs(tmp_path)
    caplog.set_level(logging.INFO, logger="waystation.report")

    def said(text: str) -> int:
        return sum(text in m for m in caplog.messages)

    def start(out: Path, until: Callable[[], object], what: str) -> None:
        service = RulesService(mqtt_settings, registry, RulesConfig(), tmp_path / "rules.db",
                               client_id=f"rules-{uid}")  # fmt: skip
        serve(service, lambda: wait_for(until, what, 60), ReportJob(registry, tariffs, store, out))

    csv_path = tmp_path / "out" / f"allocation-{month:%Y-%m}.csv"
    start(tmp_path / "out", lambda: said(f"allocation points for {month:%Y-%m}"),
          "the missed month's allocation")  # fmt: skip
    assert said(f"{month:%Y-%m} was not allocated")
    text = csv_path.read_text("utf-8-sig")
    assert f",{station},驿站 {station},xiaoge," in text
    assert "示例价格" not in text  # the operator's own prices
    [points] = store.query(
        f'SELECT count("cost") FROM "allocation" WHERE "station" = \'{station}\''
    )
    assert points.values[0][1] >= 2  # electricity and water
    # Restarted again: the export is there, the month is not redone.
    written = csv_path.stat().st_mtime_ns
    start(tmp_path / "out", lambda: said("already allocated"), "the check")
    assert said(f"{month:%Y-%m} already allocated ({csv_path})")
    # On another machine (no export there): InfluxDB holds the month, not redone either.
    start(tmp_path / "elsewhere", lambda: said("`allocation`)"), "the check")
    assert said(f"{month:%Y-%m} already allocated (InfluxDB {store.database!r}")
    assert csv_path.stat().st_mtime_ns == written
    assert not (tmp_path / "elsewhere").exists()
    assert said("was not allocated") == 1


@pytest.mark.integration
def test_the_rules_service_carries_the_monthly_job(
    store: InfluxStore, tmp_path: Path, mqtt_settings: MqttSettings
) -> None:
    registry = district(a=station_entry("a", "enterprise_incubated"))
    service = RulesService(mqtt_settings, registry, RulesConfig(), tmp_path / "rules.db")
    seen: list[datetime | None] = []

    def look() -> None:  # what `waystation rules` waits in, until a signal
        job = service.scheduler.get_job(JOB_ID)
        seen.append(None if job is None else job.next_run_time)

    job = ReportJob(registry, own_tariffs(tmp_path), store, tmp_path / "reports")
    serve(service, look, job)
    [next_run] = seen
    assert next_run is not None
    local = next_run.astimezone(SHANGHAI)
    assert (local.day, local.hour, local.minute) == (1, 2, 0)


@pytest.mark.integration
def test_waystation_rules_bills_with_the_tariffs_it_is_given(
    store: InfluxStore, tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer,
    uid: str,
) -> None:  # fmt: skip
    registry = tmp_path / "stations.yaml"
    data = {"version": 1, "tariff": "sichuan-general-commercial", "parties": PARTIES,
            "stations": {f"a{uid}": station_entry(f"a{uid}", "enterprise_incubated")}}  # fmt: skip
    registry.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    rules = RulesProcess(tmp_path, [
        "--mqtt", mosquitto.url, "--influx", influxdb.url, "--database", store.database,
        "--registry", str(registry), "--state", str(tmp_path / "state.db"),
        "--client-id", f"rules-{uid}", "--reports", str(tmp_path / "reports"),
        "--tariffs", str(own_tariff_dir(tmp_path / "tariffs")),
    ])  # fmt: skip
    rules.start()
    try:
        wait_for(lambda: "monthly allocation scheduled" in rules.log.read_text("utf-8"),
                 "the rules service to schedule the month", 30)  # fmt: skip
    finally:
        rules.kill9()
    line = next(x for x in rules.log.read_text("utf-8").splitlines() if "allocation" in x)
    assert "02:00:00+08:00, tariffs sichuan-general-commercial" in line
