"""Counters and histograms for ingest, rendered in the Prometheus text format.

Written by the writer thread only and read by the HTTP thread; plain ints and
lists under the GIL, so a scrape may see a batch half-counted, never a torn value.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from waystation.contract import DeadLetterCode

__all__ = ["Histogram", "IngestStats", "render_prometheus"]

# Seconds. Batch writes take milliseconds; reading age spans a live reading
# (sub-second) to a store-and-forward replay after an outage (hours).
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
AGE_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1,
    2.5,
    5,
    10,
    60,
    600,
    3600,
    86400,
)


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding the q-th observation (inf past the last)."""
        if self.n == 0:
            return 0.0
        rank, seen = q * self.n, 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            seen += count
            if seen >= rank:
                return bound
        return float("inf")


@dataclass
class IngestStats:
    received: int = 0
    messages_written: int = 0
    points_written: int = 0
    batches: int = 0
    write_retries: int = 0
    acked: int = 0
    batch_splits: int = 0
    batch_seconds: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    reading_age_seconds: Histogram = field(default_factory=lambda: Histogram(AGE_BUCKETS))


def _histogram(name: str, help_text: str, h: Histogram) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    cumulative = 0
    for bound, count in zip(h.buckets, h.counts, strict=False):
        cumulative += count
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
    lines += [
        f'{name}_bucket{{le="+Inf"}} {h.n}',
        f"{name}_sum {h.total:.6f}",
        f"{name}_count {h.n}",
    ]
    return lines


def render_prometheus(
    stats: IngestStats, deadletters: Counter[DeadLetterCode], *, backlog: int, connected: bool
) -> str:
    p = "waystation_ingest"
    counters = (
        ("received_total", "MQTT messages taken off the broker", stats.received),
        (
            "messages_written_total",
            "messages whose points InfluxDB accepted",
            stats.messages_written,
        ),
        ("points_written_total", "points InfluxDB accepted", stats.points_written),
        ("batches_total", "batches written", stats.batches),
        (
            "write_retries_total",
            "batch writes retried while InfluxDB was unavailable",
            stats.write_retries,
        ),
        ("acked_total", "messages acknowledged to the broker", stats.acked),
        (
            "batch_splits_total",
            "batches split because InfluxDB found them too large",
            stats.batch_splits,
        ),
    )
    lines: list[str] = []
    for name, help_text, value in counters:
        lines += [
            f"# HELP {p}_{name} {help_text}",
            f"# TYPE {p}_{name} counter",
            f"{p}_{name} {value}",
        ]
    lines += [
        f"# HELP {p}_deadletters_total messages refused, by reason",
        f"# TYPE {p}_deadletters_total counter",
    ]
    lines += [
        f'{p}_deadletters_total{{reason="{code}"}} {n}' for code, n in sorted(deadletters.items())
    ]
    lines += [
        f"# HELP {p}_backlog messages received and not yet written",
        f"# TYPE {p}_backlog gauge",
        f"{p}_backlog {backlog}",
        f"# HELP {p}_connected 1 while subscribed to the broker",
        f"# TYPE {p}_connected gauge",
        f"{p}_connected {int(connected)}",
    ]
    lines += _histogram(
        f"{p}_batch_seconds", "time to decode, write and ack a batch", stats.batch_seconds
    )
    lines += _histogram(
        f"{p}_reading_age_seconds", "reading timestamp to durable write", stats.reading_age_seconds
    )
    return "\n".join(lines) + "\n"
