"""The monthly job: on the 1st at 02:00 local time, the month before is allocated."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
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
from rules.allocation.schedule import JOB_ID, add_monthly_job
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


def test_the_monthly_job_refuses_example_prices(tmp_path: Path) -> None:
    registry = district(a=station_entry("a", "enterprise_incubated"))
    store = InfluxStore("http://127.0.0.1:1", "never-queried")
    job = ReportJob(registry, shipped_tariffs(), store, tmp_path)
    with pytest.raises(AllocationError) as info:
        schedule_allocation(BackgroundScheduler(), job, SHANGHAI)
    assert "tariff sichuan-general-commercial holds EXAMPLE prices" in str(info.value)
    assert "示例价格" in str(info.value)
    # Even a job made by hand, run as the scheduled one, refuses before reading anything.
    with pytest.raises(AllocationError, match="EXAMPLE prices"):
        replace(job, scheduled=True).run(date(2026, 1, 1))
    assert not any(tmp_path.iterdir())


@pytest.mark.integration
def test_scheduled_run_writes_the_export(
    store: InfluxStore, tmp_path: Path, mqtt_settings: MqttSettings, uid: str
) -> None:
    registry = district(**{f"a{uid}": station_entry(f"a{uid}", "enterprise_incubated")})
    month = previous_month(datetime.now(SHANGHAI).date())
    window = month_window(month, SHANGHAI)
    days = days_of_history(window, datetime.now(SHANGHAI))
    ingest = IngestConfig(client_id=f"ingest-{uid}", topic_filter=f"stations/a{uid}/+/+")
    with IngestWorker(mqtt_settings, store, registry, ingest) as worker:
        assert worker.wait_subscribed()
        published = backfill_month(registry, f"a{uid}", mqtt_settings, tmp_path / "o.db", days)
        wait_for(lambda: worker.stats.points_written >= published, "ingest to catch up", 60)
    job = ReportJob(registry, own_tariffs(tmp_path), store, tmp_path / "out", write_influx=False)
    scheduler = BackgroundScheduler()
    scheduled = schedule_allocation(scheduler, job, SHANGHAI)
    scheduler.start()
    try:
        scheduled.modify(next_run_time=datetime.now(SHANGHAI))  # as if it were the 1st
        wait_for((tmp_path / "out" / f"allocation-{month:%Y-%m}.xlsx").exists, "the export")
    finally:
        scheduler.shutdown()
    text = (tmp_path / "out" / f"allocation-{month:%Y-%m}.csv").read_text("utf-8-sig")
    assert f",a{uid},驿站 a{uid},xiaoge," in text
    assert "示例价格" not in text  # the operator's own prices


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
