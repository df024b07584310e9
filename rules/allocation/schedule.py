"""The monthly job: on the 1st, allocate the month before (SPEC §8).

It runs at 02:00 local time rather than midnight so that the month's last
readings, and the first ones after it that the boundary interpolates
against, have arrived, even from an agent replaying a short outage.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from rules.allocation.report import previous_month

__all__ = ["JOB_ID", "add_monthly_job"]

JOB_ID = "monthly-allocation"
RUN_HOUR = 2


def add_monthly_job(
    scheduler: BaseScheduler,
    allocate: Callable[[date], object],
    tz: ZoneInfo,
    clock: Callable[[], datetime] = datetime.now,
) -> Job:
    """Schedule `allocate(previous month)` at 02:00 on the 1st of every month in `tz`."""

    def run() -> None:
        allocate(previous_month(clock().astimezone(tz).date()))

    return scheduler.add_job(
        run,
        CronTrigger(day=1, hour=RUN_HOUR, minute=0, timezone=tz),
        id=JOB_ID,
        name="allocate the previous month",
        replace_existing=True,
        coalesce=True,
        misfire_grace_time=6 * 3600,  # a service down at 02:00 still runs it on start, that day
    )
