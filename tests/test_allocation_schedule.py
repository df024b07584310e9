"""The monthly job: on the 1st at 02:00 local time, the month before is allocated."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from rules.allocation.command import ReportJob
from rules.allocation.report import previous_month
from rules.allocation.schedule import JOB_ID, add_monthly_job
from rules.allocation.tariff import shipped_tariffs
from rules.outage.command import serve
from rules.outage.config import RulesConfig
from rules.outage.service import RulesService
from tests.allocation_helpers import district, station_entry
from tests.helpers import wait_for
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
        scheduler, calls.append, SHANGHAI, clock=lambda: datetime(2027, 1, 1, 2, tzinfo=SHANGHAI)
    )
    after = datetime(2026, 11, 24, 12, tzinfo=SHANGHAI)
    first = job.trigger.get_next_fire_time(None, after)
    assert first == datetime(2026, 12, 1, 2, tzinfo=SHANGHAI)
    assert job.trigger.get_next_fire_time(first, first.replace(minute=1)) == datetime(
        2027, 1, 1, 2, tzinfo=SHANGHAI
    )
    job.func()
    assert calls == [date(2026, 12, 1)]


@pytest.mark.integration
def test_scheduled_run_writes_the_export(store: InfluxStore, tmp_path: Path) -> None:
    registry = district(a=station_entry("a", "enterprise_incubated"))
    job = ReportJob(registry, shipped_tariffs(), store, tmp_path, write_influx=False)
    scheduler = BackgroundScheduler()
    scheduled = add_monthly_job(scheduler, job.run, SHANGHAI)
    scheduler.start()
    try:
        scheduled.modify(next_run_time=datetime.now(SHANGHAI))  # as if it were the 1st
        month = previous_month(datetime.now(SHANGHAI).date())
        wait_for((tmp_path / f"allocation-{month:%Y-%m}.xlsx").exists, "the export")
    finally:
        scheduler.shutdown()
    text = (tmp_path / f"allocation-{month:%Y-%m}.csv").read_text("utf-8-sig")
    # Nothing was measured (an empty database): zero quantities, and the findings say why.
    assert ",a,驿站 a,xiaoge," in text
    assert "无数据" in text


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

    serve(service, registry, store, tmp_path / "reports", look)
    [next_run] = seen
    assert next_run is not None
    local = next_run.astimezone(SHANGHAI)
    assert (local.day, local.hour, local.minute) == (1, 2, 0)
