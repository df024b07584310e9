"""`waystation ingest --workers N`: N partition processes (`--partition i/N`), supervised.

Each child is the same command with `--partition i/N` and its own client id
(`{id}-p{i}`), so each has its own persistent, non-shared subscriptions
(see `ingest.partition`). The supervisor stays light (no registry, no
decoding): it restarts a child that dies, with the one backoff, forwards
SIGTERM and SIGINT, and answers `/healthz` (the supervisor runs), `/readyz`
(every partition has subscribed) and `/metrics` (live partitions, restarts).
Children die with it, kill -9 included (`PR_SET_PDEATHSIG`): an orphan would
fight the next supervisor's child over its session.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from waystation.backoff import Backoff
from waystation.health import HealthServer

__all__ = ["Supervisor"]

log = logging.getLogger("waystation.ingest.workers")

RESTART_MIN_S, RESTART_MAX_S, RESTART_FLOOR_S = 1.0, 30.0, 0.5
STABLE_S = 30.0  # a child up this long starts the backoff afresh when it dies
STOP_WAIT_S = 60.0  # a child finishing its batch and acks after SIGTERM
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: children outlive a killed supervisor (documented)


class _Child:
    def __init__(self, index: int, argv: list[str], ready_file: Path) -> None:
        self.index = index
        self.argv = argv
        self.ready_file = ready_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.backoff = Backoff(RESTART_MIN_S, RESTART_MAX_S, RESTART_FLOOR_S)
        self.restart_at: float | None = None
        self.restarts = 0

    def spawn(self) -> None:
        self.ready_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.argv, preexec_fn=_die_with_parent)  # noqa: PLW1509 - our own command; prctl must run in the child
        self.started = time.monotonic()
        self.restart_at = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Runs the children until `stop()`; see the module's docstring."""

    def __init__(self, child_argv: list[str], count: int, client_id: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="waystation-ingest-workers-"))
        self._children = [
            _Child(
                i,
                [
                    *child_argv,
                    "--partition",
                    f"{i}/{count}",
                    "--client-id",
                    f"{client_id}-p{i}",
                    "--ready-file",
                    str(self._dir / f"p{i}"),
                ],
                self._dir / f"p{i}",
            )
            for i in range(count)
        ]
        self._stop = threading.Event()
        self.exit_codes: dict[int, int] = {}

    # --- what the health endpoint reads ----------------------------------------------

    @property
    def alive(self) -> bool:
        return not self._stop.is_set()

    @property
    def ready(self) -> bool:
        return all(c.running and c.ready_file.exists() for c in self._children)

    @property
    def collector(self) -> Collector:
        return _WorkersCollector(self)

    # --- running -------------------------------------------------------------------

    def run(self, health_port: int = 0) -> int:
        health = HealthServer(self, health_port) if health_port else None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        try:
            for child in self._children:
                child.spawn()
            log.info("ingest: %d partition workers started", len(self._children))
            if health is not None:
                health.start()
                log.info("health and metrics on http://127.0.0.1:%d/metrics", health.port)
            while not self._stop.wait(0.2):
                self._tend()
        finally:
            self._stop_children()
            if health is not None:
                health.stop()
            for f in self._dir.iterdir():
                f.unlink()
            self._dir.rmdir()
        failed = {i: rc for i, rc in self.exit_codes.items() if rc not in (0, -signal.SIGTERM)}
        return 1 if failed else 0

    def stop(self) -> None:
        self._stop.set()

    def _tend(self) -> None:
        now = time.monotonic()
        for child in self._children:
            if child.running:
                continue
            if child.restart_at is None:
                rc = child.proc.returncode if child.proc else None
                if now - child.started >= STABLE_S:
                    child.backoff.reset()
                delay = child.backoff.next_delay()
                child.restart_at = now + delay
                log.warning(
                    "ingest partition %d/%d exited (status %s); restarting in %.1f s",
                    child.index,
                    len(self._children),
                    rc,
                    delay,
                )
            elif now >= child.restart_at:
                child.restarts += 1
                child.spawn()

    def _stop_children(self) -> None:
        for child in self._children:
            if child.running and child.proc is not None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for child in self._children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("ingest partition %d did not stop in time; killing it", child.index)
                child.proc.kill()
                child.proc.wait()
            self.exit_codes[child.index] = child.proc.returncode


class _WorkersCollector(Collector):
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        children = self.supervisor._children  # noqa: SLF001 - the supervisor's own view
        yield GaugeMetricFamily(
            "waystation_ingest_partitions_running",
            "partition workers running",
            value=sum(c.running for c in children),
        )
        yield CounterMetricFamily(
            "waystation_ingest_partition_restarts",
            "partition workers restarted after they exited",
            value=sum(c.restarts for c in children),
        )


def child_argv(argv: list[str]) -> list[str]:
    """This command line for a child: without --workers, --health-port and --client-id."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--workers", "--health-port", "--client-id"):
            skip = "=" not in arg
            continue
        out.append(arg)
    return [sys.executable, "-m", "app.cli", *out, "--health-port", "0"]
