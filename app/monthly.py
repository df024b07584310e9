"""The rules service as `waystation rules` runs it: with its health endpoint and the monthly job.

The rules service (`rules.outage`) owns a scheduler; the monthly allocation
(`rules.allocation`) is put on it here, so neither part imports the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rules.allocation.command import ReportJob, schedule_allocation
from rules.outage.service import RulesService
from waystation.health import HealthServer

__all__ = ["serve"]

log = logging.getLogger("waystation.rules")


def serve(
    service: RulesService,
    wait: Callable[[], None],
    allocation: ReportJob | None = None,
    *,
    health_port: int = 0,
) -> None:
    """Run until `wait` returns; with an allocation job, bill every month too.

    With a `health_port`, `/healthz`, `/readyz` and `/metrics` on 127.0.0.1.
    """
    registry = service.registry
    health = HealthServer(service, health_port, name="rules-health") if health_port else None
    with service:
        if allocation is not None:
            job = schedule_allocation(service.scheduler, allocation)
            log.info(
                "monthly allocation scheduled: next %s, tariffs %s | 每月分摊已排程",
                job.next_run_time,
                ", ".join(sorted(allocation.tariffs)),
            )
        labels = ", ".join(sender.label for sender in service.senders)
        log.info("rules running: %d devices; channels: %s", registry.device_count, labels)
        if health is not None:
            health.start()
            log.info("health and metrics on http://127.0.0.1:%d/metrics", health.port)
        try:
            wait()
        finally:
            if health is not None:
                health.stop()
