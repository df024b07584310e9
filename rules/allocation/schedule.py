"""The monthly job: on the 1st, allocate the month before (SPEC §8).

It runs at 02:00 local time rather than midnight so that the month's last
readings, and the first ones after it that the boundary interpolates
against, have arrived, even from an agent replaying a short outage. A
registry may give stations zones of their own: the job runs when it is
02:00 on the 1st in the last of them (the westernmost), so every station's
month has been over for two hours, and the district is billed in one run.

A service that was not running then (a restart, a deploy, a reboot) finds
the month due and not yet allocated when it starts, and allocates it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from rules.allocation.report import previous_month

__all__ = ["CATCH_UP_ID", "JOB_ID", "MonthlyTrigger", "add_catch_up", "add_monthly_job"]

JOB_ID = "monthly-allocation"
CATCH_UP_ID = "monthly-allocation-catch-up"
RUN_HOUR = 2


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


class MonthlyTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 has no type hints
    """02:00 on the 1st of each month in whichever of `zones` reaches it last."""

    __slots__ = ("zones",)

    def __init__(self, zones: Iterable[ZoneInfo]) -> None:
        self.zones = sorted(set(zones), key=lambda z: z.key) or [ZoneInfo("UTC")]

    def run_time(self, month: date) -> datetime:
        """When the allocation of `month` runs: the 1st after it, 02:00 in the latest zone."""
        first = _next_month(month)
        return max(
            datetime(first.year, first.month, 1, RUN_HOUR, tzinfo=zone) for zone in self.zones
        )

    def due_month(self, now: datetime) -> date:
        """The last month whose run time has come by `now`."""
        month = now.astimezone(UTC).date().replace(day=1)  # due only in zones east of UTC+12
        while self.run_time(month) > now:
            month = previous_month(month)
        return month

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + timedelta(microseconds=1))
        month = previous_month(self.due_month(start))
        while self.run_time(month) < start:
            month = _next_month(month)
        return self.run_time(month)

    def __str__(self) -> str:
        return f"monthly, 1st {RUN_HOUR:02d}:00 in {', '.join(z.key for z in self.zones)}"

    def __repr__(self) -> str:
        return f"<MonthlyTrigger ({self})>"


def add_monthly_job(
    scheduler: BaseScheduler,
    allocate: Callable[[date], object],
    zones: Iterable[ZoneInfo],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Job:
    """Schedule `allocate(the month just over)` at 02:00 on every 1st in the latest of `zones`."""
    trigger = MonthlyTrigger(zones)

    def run() -> None:
        allocate(trigger.due_month(clock()))

    return scheduler.add_job(
        run,
        trigger,
        id=JOB_ID,
        name="allocate the previous month",
        replace_existing=True,
        coalesce=True,
        misfire_grace_time=6 * 3600,  # a service suspended at 02:00 still runs it that day
    )


def add_catch_up(
    scheduler: BaseScheduler,
    catch_up: Callable[[date], object],
    zones: Iterable[ZoneInfo],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> date:
    """Run `catch_up(the month due by now)` once, at once; it decides whether it is needed."""
    month = MonthlyTrigger(zones).due_month(clock())
    scheduler.add_job(
        catch_up,
        "date",  # now
        args=[month],
        id=CATCH_UP_ID,
        name=f"allocate {month:%Y-%m} if it was missed",
        replace_existing=True,
        misfire_grace_time=None,  # however late the scheduler starts
    )
    return month
