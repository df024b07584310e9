"""Ingest's `/metrics` (Prometheus, via prometheus_client), read at each scrape.

The writer thread counts in plain ints and bucket lists (`IngestStats`), a
few operations a batch; the collector turns them into metric families when
scraped, from the HTTP thread. Under the GIL a scrape may see a batch
half-counted, never a torn value. Names start `waystation_ingest_`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ingest.worker import IngestWorker

__all__ = ["Buckets", "IngestCollector", "IngestStats"]

P = "waystation_ingest"

# Seconds. Batch writes take milliseconds; reading age spans a live reading
# (sub-second) to a store-and-forward replay after an outage (hours).
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
AGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5, 10, 60, 600, 3600,
               86400)  # fmt: skip


@dataclass
class Buckets:
    """A histogram's counts, kept by the writer thread (a bisect and two adds an observation)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def family(self, name: str, text: str) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for bound, count in zip(self.bounds, self.counts, strict=False):
            cumulative += count
            buckets.append((f"{bound:g}", cumulative))
        buckets.append(("+Inf", self.n))
        return HistogramMetricFamily(name, text, buckets=buckets, sum_value=self.total)


@dataclass
class IngestStats:
    received: int = 0
    messages_written: int = 0
    points_written: int = 0
    batches: int = 0
    write_retries: int = 0
    acked: int = 0
    batch_splits: int = 0
    batch_seconds: Buckets = field(default_factory=lambda: Buckets(BATCH_BUCKETS))
    reading_age_seconds: Buckets = field(default_factory=lambda: Buckets(AGE_BUCKETS))


class IngestCollector(Collector):
    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        s = w.stats
        for name, text, value in (
            ("received", "MQTT messages taken off the broker", s.received),
            ("messages_written", "messages whose points InfluxDB accepted", s.messages_written),
            ("points_written", "points InfluxDB accepted", s.points_written),
            ("batches", "batches written", s.batches),
            ("write_retries", "batch writes retried while InfluxDB was unavailable",
             s.write_retries),
            ("acked", "messages acknowledged to the broker", s.acked),
            ("batch_splits", "batches split because InfluxDB found them too large",
             s.batch_splits),
        ):  # fmt: skip
            yield CounterMetricFamily(f"{P}_{name}", text, value=value)
        dead = CounterMetricFamily(
            f"{P}_deadletters", "messages refused, by reason", labels=["reason"]
        )
        for code, n in sorted(w.deadletters.counts.items()):
            dead.add_metric([code], n)
        yield dead
        refused = CounterMetricFamily(
            f"{P}_deadletters_refused",
            "dead letters the broker refused to take (filed all the same), by PUBACK reason code",
            labels=["code"],
        )
        for reason, n in sorted(w.deadletters.refused.items()):
            refused.add_metric([f"0x{reason:02X}"], n)
        yield refused
        yield GaugeMetricFamily(f"{P}_backlog", "messages received and not yet written",
                                value=w.backlog)  # fmt: skip
        yield GaugeMetricFamily(f"{P}_connected", "1 while subscribed to the broker",
                                value=int(w.subscribed))  # fmt: skip
        yield s.batch_seconds.family(f"{P}_batch_seconds", "time to decode, write and ack a batch")
        yield s.reading_age_seconds.family(
            f"{P}_reading_age_seconds", "reading timestamp to durable write"
        )
