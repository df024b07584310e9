"""The one retry delay: capped, fully jittered exponential backoff that honours Retry-After.

Every retry loop in Waystation waits `Backoff.next_delay()`: the MQTT
session's reconnects, the notification channels' retries, ingest's writes
while InfluxDB is unavailable, the rules' alert-history writes and the edge
publisher's pause after the broker refused readings. The rule, in one place:

    wait = max(retry_after, jittered backoff), at least `floor_s`

- the backoff doubles from `initial_s` up to `max_s`; the delay is drawn
  uniformly below it (full jitter), so clients cut off together do not come
  back together;
- a server's Retry-After is honoured (up to `max_retry_after_s`) but never
  shortens our own backoff, and `floor_s` keeps `Retry-After: 0` (or an
  unlucky draw near zero) from turning into a hot loop.

Not thread-safe: each retry loop owns its Backoff.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 30.0
    floor_s: float = 0.1
    max_retry_after_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0  # delays handed out since the last reset

    def __post_init__(self) -> None:
        if not 0 < self.floor_s <= self.initial_s <= self.max_s:
            raise ValueError("backoff needs 0 < floor_s <= initial_s <= max_s")

    @property
    def ceiling_s(self) -> float:
        """The most the next delay may be (before a Retry-After)."""
        return min(self.max_s, self.initial_s * (1 << min(self.attempts, 62)))

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """Seconds to wait before the next attempt; each call backs off further."""
        jittered = float(self.rng.uniform(self.floor_s, self.ceiling_s))
        self.attempts += 1
        if retry_after_s is None:
            return jittered
        return max(jittered, min(max(retry_after_s, 0.0), self.max_retry_after_s))

    def reset(self) -> None:
        """After a success: the next failure starts from `initial_s` again."""
        self.attempts = 0
