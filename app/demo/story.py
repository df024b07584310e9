"""The demo's story, phase by phase (see the package docstring)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from app.demo.faults import chill_dispenser, cut_power, restore_power, schedule_meter_reset
from app.demo.receiver import NoticeReceiver
from app.demo.tables import notice_panel, station_table
from app.localservers import InfluxServer, MosquittoServer
from edge.agent import EdgeAgent
from edge.config import AgentConfig
from ingest.worker import IngestConfig, IngestWorker
from rules.allocation.command import ReportJob, print_summary
from rules.allocation.report import MonthReport, month_window, previous_month
from rules.allocation.tariff import shipped_tariffs
from rules.outage.config import RulesConfig, Thresholds, Timing, WebhookChannel
from rules.outage.service import RulesService
from waystation.contract import Kind
from waystation.registry import Registry, Role, Utility, load_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

__all__ = ["DemoResult", "run_demo"]

DATABASE = "waystation"
POWER_CUT = "dachuan-sanitation-01"  # the station whose power fails
COLD = "dachuan-rider-01"  # the station whose dispenser's heater breaks
RESET = "dachuan-rider-02"  # the station whose main meter resets in the past month
HISTORY_TIMEOUT_S = 600


@dataclass(frozen=True)
class Pace:
    backfill_step: timedelta
    interval: timedelta
    cold_for: timedelta
    station_window: timedelta
    wait_s: float  # the longest any step may take before the demo gives up on it


FULL = Pace(timedelta(minutes=5), timedelta(seconds=1), timedelta(seconds=8),
            timedelta(seconds=5), 60)  # fmt: skip
SHORT = Pace(timedelta(minutes=30), timedelta(seconds=0.5), timedelta(seconds=3),
             timedelta(seconds=2), 30)  # fmt: skip


@dataclass
class DemoResult:
    workdir: Path
    report: MonthReport
    csv: Path
    xlsx: Path
    fired: dict[str, set[str]] = field(default_factory=dict)  # rule → stations notified
    resolved: dict[str, set[str]] = field(default_factory=dict)


def _registry() -> Registry:
    with as_file(files("app").joinpath("data/demo-stations.yaml")) as path:
        return load_registry(path)


def run_demo(
    *,
    duration: timedelta = timedelta(seconds=10),
    interval: timedelta | None = None,
    workdir: Path | None = None,
    short: bool = False,
    console: Console | None = None,
) -> DemoResult:
    """Run the story; `duration` is how long to stay live after the faults have played out."""
    pace = SHORT if short else FULL
    if interval is not None:
        pace = Pace(pace.backfill_step, interval, pace.cold_for, pace.station_window, pace.wait_s)
    console = console or Console()
    if not console.is_terminal:
        console = Console(width=150, file=console.file)  # a pipe or a CI log: wide tables
    keep = workdir is not None
    root = workdir or Path(tempfile.mkdtemp(prefix="waystation-demo-"))
    registry = _registry()
    console.rule("[bold]Waystation demo · 达川区工会驿站[/bold]")
    console.print(
        f"{len(registry.stations)} stations, {registry.device_count} devices: rider homes run by "
        "incubated enterprises, a department-guided one, a sanitation station run by its "
        "industry union, a community-integrated one."
    )
    try:
        with _servers(root) as (broker, influx):
            console.print(f"Mosquitto {broker.url}   InfluxDB {influx.url} (database {DATABASE})")
            story = _Story(
                console, registry=registry, broker=broker, influx=influx, root=root, pace=pace
            )
            return story.run(duration)
    finally:
        if keep:
            console.print(f"Servers stopped; data, exports and state kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            console.print("Servers stopped and scratch data removed (--workdir DIR keeps them).")


@contextmanager
def _servers(root: Path) -> Iterator[tuple[MosquittoServer, InfluxServer]]:
    broker = MosquittoServer(root / "mosquitto")
    influx = InfluxServer(root / "influxdb")
    try:
        broker.start()
        influx.start()
        yield broker, influx
    finally:
        broker.stop()
        influx.stop()


def _sized(config: AgentConfig, history: timedelta) -> AgentConfig:
    """An outbox that keeps the whole history (past 45 days the default would drop some)."""
    outbox = config.outbox.model_copy(update={"max_age": history + timedelta(days=1)})
    return config.model_copy(update={"outbox": outbox})


def _device(registry: Registry, station: str, kind: Kind, main: bool = False) -> str:
    for device, spec in registry.stations[station].devices.items():
        if spec.kind is kind and (
            not main or (spec.role is Role.MAIN and spec.utility is Utility.ELECTRICITY)
        ):
            return device
    raise LookupError(f"{station} has no {kind}")


class _Story:
    def __init__(
        self,
        console: Console,
        *,
        registry: Registry,
        broker: MosquittoServer,
        influx: InfluxServer,
        root: Path,
        pace: Pace,
    ) -> None:
        self.console = console
        self.registry = registry
        self.root = root
        self.pace = pace
        self.broker = broker
        self.influx = influx
        self.mqtt = MqttSettings.from_url(broker.url)
        self.store = InfluxStore(influx.url, DATABASE)
        self.store.create_database()
        self.now = datetime.now(UTC)
        self.month = previous_month(self.now.date())
        start = month_window(self.month, registry.station_timezone(POWER_CUT)).start_ms / 1000
        # From two days before the past month to now: its boundaries have readings either side.
        self.history = timedelta(seconds=self.now.timestamp() - start + 2 * 86400)
        configs = {
            sid: _sized(AgentConfig.from_registry(registry, sid, interval=pace.interval,
                                                  outbox=root / "outbox" / f"{sid}.db"),
                        self.history)
            for sid in registry.stations
        }  # fmt: skip
        self.agents = {
            sid: EdgeAgent(
                configs[sid],
                self.mqtt,
                seed=n,
                backfill=self.history,
                backfill_step=pace.backfill_step,
            )
            for n, sid in enumerate(registry.stations)
        }  # fmt: skip

    # --- phases ----------------------------------------------------------------------------

    def run(self, duration: timedelta) -> DemoResult:
        ingest = IngestConfig(client_id="demo-ingest", deadletter_path=self.root / "dead.jsonl")
        with IngestWorker(self.mqtt, self.store, self.registry, ingest) as worker:
            worker.wait_subscribed()
            self._history(worker)
            report, csv_path, xlsx_path = self._allocation()
            result = DemoResult(self.root, report, csv_path, xlsx_path)
            with NoticeReceiver(self._show) as receiver:
                self._live(receiver, duration)
                for rule in ("station_down", "dispenser_cold"):
                    result.fired[rule] = receiver.seen("firing", rule)
                    result.resolved[rule] = receiver.seen("resolved", rule)
            station_table(self.console, self.store, self.registry)
            for agent in self.agents.values():
                agent.stop()
        return result

    def _history(self, worker: IngestWorker) -> None:
        reset_at = datetime.fromtimestamp(
            month_window(self.month, self.registry.station_timezone(RESET)).start_ms / 1000
            + 15 * 86400, UTC
        )  # fmt: skip
        schedule_meter_reset(
            self.agents[RESET], _device(self.registry, RESET, Kind.METER, main=True), reset_at
        )
        steps = int(self.history / self.pace.backfill_step)
        total = sum(steps * len(a.devices) for a in self.agents.values())
        self.console.rule(f"1 · History: {self.history.days} days through MQTT")
        self.console.print(
            f"Each agent simulates its station since {self.now - self.history:%Y-%m-%d} "
            f"every {self.pace.backfill_step.total_seconds() / 60:g} min into its outbox, then "
            f"publishes it; ingest writes it to InfluxDB. {RESET}'s main meter resets on "
            f"{reset_at:%Y-%m-%d}."
        )
        started = time.monotonic()
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=self.console,
        ) as bar:  # fmt: skip
            simulated = bar.add_task("simulated", total=len(self.agents) * steps, rate="")
            stored = bar.add_task("stored in InfluxDB", total=total, rate="")
            for n, agent in enumerate(self.agents.values()):
                agent._progress = self._stepper(bar, simulated, n * steps)  # noqa: SLF001
                agent.start()
            while worker.stats.points_written < total:
                if time.monotonic() - started > HISTORY_TIMEOUT_S:
                    self.console.print("[yellow]history still arriving; going on[/yellow]")
                    break
                rate = worker.stats.points_written / max(time.monotonic() - started, 1e-3)
                bar.update(stored, completed=min(worker.stats.points_written, total),
                           rate=f"{rate:,.0f} readings/s")  # fmt: skip
                time.sleep(0.2)
            took = time.monotonic() - started
            bar.update(stored, completed=total, rate=f"{total / took:,.0f} readings/s")
        self.console.print(f"{total:,} readings in {took:.1f} s")

    @staticmethod
    def _stepper(bar: Progress, task: Any, offset: int) -> Callable[[int, int], None]:
        return lambda done, _total: bar.update(task, completed=offset + done)

    def _allocation(self) -> tuple[MonthReport, Path, Path]:
        self.console.rule(f"2 · {self.month:%Y-%m} utility allocation")
        # The shipped tariff's prices are examples: fine for a demo, said under the summary.
        job = ReportJob(self.registry, shipped_tariffs(), self.store, self.root / "reports",
                        allow_example_prices=True)  # fmt: skip
        report, csv_path, xlsx_path = job.run(self.month)
        print_summary(self.console, report, self.registry)
        self.console.print(f"Export: {csv_path}\n        {xlsx_path}")
        return report, csv_path, xlsx_path

    def _rules(self, receiver: NoticeReceiver) -> RulesService:
        config = RulesConfig(
            language="zh",
            thresholds=Thresholds(
                station_window=self.pace.station_window,
                dispenser_cold_for=self.pace.cold_for,
                dispenser_min_temp_c=50,
                # The demo's agents run beside it and reconnect in a second or two.
                reconnect_grace=timedelta(seconds=3),
            ),
            timing=Timing(group_wait=timedelta(seconds=1), group_interval=timedelta(seconds=3)),
            channels=[WebhookChannel(type="webhook", url=receiver.url)],
        )
        return RulesService(self.mqtt, self.registry, config, self.root / "rules-state.db",
                            store=self.store, client_id="demo-rules")  # fmt: skip

    def _show(self, body: dict[str, Any]) -> None:
        self.console.print(notice_panel(body))

    def _wait(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.pace.wait_s
        while not done():
            if time.monotonic() > deadline:
                self.console.print(f"[yellow]gave up waiting for {what}[/yellow]")
                return
            time.sleep(0.2)

    def _live(self, receiver: NoticeReceiver, duration: timedelta) -> None:
        self.console.rule("3 · Live, with faults")
        self.console.print(
            f"Dashboards: dashboards/json/ (push them: waystation dashboards push --grafana URL); "
            f"point Grafana's InfluxDB data source at {self.influx.url}, database {DATABASE}. "
            "Ctrl-C stops."
        )
        cold_device = _device(self.registry, COLD, Kind.WATER_DISPENSER)
        with self._rules(receiver) as rules:
            rules.wait_subscribed()
            time.sleep(3)  # calm passes first: a restart or start raises no false alert
            self.console.print(f"[bold]⚡ power cut[/bold] at {self._name(POWER_CUT)}")
            cut_power(self.agents[POWER_CUT])
            self._wait(
                "the station alert", lambda: POWER_CUT in receiver.seen("firing", "station_down")
            )
            self.console.print(f"[bold]❄ heater broken[/bold] at {self._name(COLD)}")
            chill_dispenser(self.agents[COLD], cold_device, broken=True)
            self._wait(
                "the dispenser alert", lambda: COLD in receiver.seen("firing", "dispenser_cold")
            )
            self.console.print(f"[bold]power back[/bold] at {self._name(POWER_CUT)}; heater mended")
            restore_power(self.agents[POWER_CUT])
            chill_dispenser(self.agents[COLD], cold_device, broken=False)
            self._wait(
                "both resolutions",
                lambda: (
                    POWER_CUT in receiver.seen("resolved", "station_down")
                    and COLD in receiver.seen("resolved", "dispenser_cold")
                ),
            )
            time.sleep(duration.total_seconds())

    def _name(self, station: str) -> str:
        return self.registry.stations[station].name
