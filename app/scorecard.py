"""The service-level scorecard wired next to the allocation in the monthly report.

Its thresholds are the rules config's (`thresholds`), so the scorecard and
the alerts judge a dispenser cold and a device silent alike; `report` and
the monthly job of `rules` and `report --schedule` all build it here.
"""

from __future__ import annotations

from pathlib import Path

from rules.outage.config import RulesConfig
from rules.servicelevel.command import ScorecardJob
from rules.servicelevel.definitions import Definitions
from waystation.registry import Registry
from waystation.store import InfluxStore

__all__ = ["definitions", "scorecard_job"]


def definitions(config: RulesConfig | None) -> Definitions:
    th = (config or RulesConfig()).thresholds
    return Definitions(
        min_temp_c=th.dispenser_min_temp_c,
        cold_for_ms=int(th.dispenser_cold_for.total_seconds() * 1000),
        silent_intervals=th.silent_intervals,
    )


def scorecard_job(
    registry: Registry,
    store: InfluxStore,
    out_dir: Path,
    config: RulesConfig | None,
    *,
    stations: list[str] | None = None,
    write_influx: bool = True,
) -> ScorecardJob:
    return ScorecardJob(registry, store, out_dir, definitions(config), stations, write_influx)
