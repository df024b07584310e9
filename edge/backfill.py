"""The station's simulation, and the history a backfill simulates into the outbox.

Simulated devices share one `StationSimulation` (their readings agree as real
ones do). With a backfill, the simulation starts before it, so the live
readings continue the simulated history (registers never step back).

A backfill is refused before anything is simulated when the outbox could not
hold it (`BackfillTooLarge`, with the sizes to give), and stops cleanly when
interrupted (`BackfillInterrupted`, saying what was kept); the publisher then
replays the history as arrays of readings.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.config import AgentConfig
from edge.drivers.simulator.config import SimulatorConfig
from edge.drivers.simulator.driver import SharedSimulation
from edge.outbox import Outbox
from edge.simulation import StationSimulation
from waystation.contract import Kind
from waystation.durations import format_duration
from waystation.registry import DeviceSpec, Utility

__all__ = [
    "BACKFILL_CHUNK",
    "Backfill",
    "BackfillInterrupted",
    "BackfillTooLarge",
    "station_simulation",
]

log = logging.getLogger("edge.agent")

BACKFILL_CHUNK = 10_000  # readings per outbox transaction while backfilling


class BackfillTooLarge(ValueError):
    """The outbox cannot hold the history asked for: said before anything is simulated."""


class BackfillInterrupted(Exception):
    """Stopped (Ctrl-C, SIGTERM) while simulating history; what was kept is in the message."""

    def __init__(self, message: str, kept: int) -> None:
        super().__init__(message)
        self.kept = kept


def station_simulation(config: AgentConfig, start: datetime, seed: int) -> SharedSimulation | None:
    """One simulation of the station's simulated devices from `start`; None if there are none."""
    simulated = {d: s for d, s in config.devices.items() if isinstance(s.driver, SimulatorConfig)}
    if not simulated:
        return None
    specs = {
        d: DeviceSpec(
            kind=s.kind,
            utility=(s.utility or Utility.ELECTRICITY) if s.kind is Kind.METER else None,
            role=s.role,
            tou_registers=s.tou_registers,
        )
        for d, s in simulated.items()
    }
    sim = StationSimulation(specs, start, ZoneInfo(config.timezone), seed=seed)
    return SharedSimulation(sim)


class Backfill:
    """`span` of history every `step`, simulated into the outbox before the agent starts."""

    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        span: timedelta,
        step: timedelta,
        clock: Callable[[], float],
    ) -> None:
        if any(not isinstance(d.driver, SimulatorConfig) for d in config.devices.values()):
            raise ValueError(
                "backfill simulates history: every device must use the simulator | "
                "回填是模拟历史数据：所有设备都必须用 simulator 驱动"
            )
        self.config = config
        self.outbox = outbox
        self.span = span
        self.step = step
        self._clock = clock
        self._stop = threading.Event()
        self._check_fits()

    def _check_fits(self) -> None:
        """Refuse, before simulating anything, a history the outbox would drop part of."""
        span, step = self.span, self.step
        devices = len(self.config.devices)
        needed = int(span / step) * devices
        depth = self.outbox.depth
        bounds = self.config.outbox
        if needed + depth <= bounds.max_readings and span < bounds.max_age:
            return
        size = max(bounds.max_readings, needed + depth + needed // 10)
        age = max(bounds.max_age, span + timedelta(days=1))
        days = f"{math.ceil(age.total_seconds() / 86400)}d"
        span_, step_ = format_duration(span), format_duration(step)
        most = f"{bounds.max_readings:,} readings and {format_duration(bounds.max_age)}"
        raise BackfillTooLarge(
            f"the outbox cannot hold {span_} of history: {needed:,} readings "
            f"({devices} devices every {step_}) on top of the {depth:,} it holds, "
            f"where it keeps at most {most}; "
            f"the oldest would be dropped. Size it: --outbox-max-readings {size} "
            f"--outbox-max-age {days} (or `outbox:` in the agent config), or backfill less "
            f"(--backfill) or more coarsely (--backfill-step) | "
            f"发件箱装不下 {span_} 的历史：需要 {needed:,} 条读数（另有已存 {depth:,} 条），"
            f"而它最多保留 {bounds.max_readings:,} 条、{format_duration(bounds.max_age)}，"
            "最早的会被丢弃。"
            f"请加大：--outbox-max-readings {size} --outbox-max-age {days}"
            "（或代理配置中的 `outbox:`），或缩短 --backfill、加大 --backfill-step"
        )

    def run(
        self, simulation: SharedSimulation, progress: Callable[[int, int], None] | None
    ) -> None:
        """Simulate the span into the outbox; BackfillInterrupted if `interrupt` came first."""
        sim = simulation.sim
        devices = self.config.devices
        end = datetime.fromtimestamp(self._clock(), tz=UTC)
        start = t = end - self.span
        total = int(self.span / self.step)
        batch: list[tuple[str, str, int, dict[str, Any]]] = []
        before = self.outbox.depth
        try:
            for n in range(total):
                if self._stop.is_set():
                    break
                sim.advance_to(t)
                ts = int(t.timestamp() * 1000)
                batch += [(d, str(s.kind), ts, sim.data(d)) for d, s in devices.items()]
                if len(batch) >= BACKFILL_CHUNK:
                    self.outbox.put_many(batch)
                    batch = []
                    if progress is not None:
                        progress(n + 1, total)
                t += self.step
            self.outbox.put_many(batch)
        except KeyboardInterrupt:
            self._stop.set()  # no handler installed: Python's own Ctrl-C
        if self._stop.is_set():
            kept = self.outbox.depth - before
            raise self._interrupted(kept, total * len(devices), start, t)
        if progress is not None:
            progress(total, total)
        log.info(
            "backfilled %s of %s: %d readings into the outbox, which holds %d (%d dropped "
            "so far)", self.span, self.config.station, total * len(devices), self.outbox.depth,
            self.outbox.dropped_total,
        )  # fmt: skip

    def interrupt(self) -> None:
        """Stop simulating history (from a signal handler): what is stored so far stays."""
        self._stop.set()

    def _interrupted(
        self, kept: int, total: int, start: datetime, reached: datetime
    ) -> BackfillInterrupted:
        """What an interrupted backfill kept (whole chunks, in order from the start)."""
        tz = ZoneInfo(self.config.timezone)
        path = self.config.outbox.path
        since = start.astimezone(tz).isoformat(timespec="minutes")
        until = reached.astimezone(tz).isoformat(timespec="minutes")
        return BackfillInterrupted(
            f"backfill interrupted: {kept:,} of {total:,} readings kept in the outbox "
            f"{path} (history from {since}, stopped near {until}); "
            "nothing was published. Start the agent without --backfill to publish them, "
            "or again with --backfill to simulate the whole span anew | "
            f"回填被中断：{total:,} 条中已有 {kept:,} 条存入发件箱 {path}"
            f"（从 {since} 起，停在 {until} 附近），尚未发布。"
            "不带 --backfill 启动代理即可发布它们，或带 --backfill 重新模拟整段历史",
            kept,
        )
