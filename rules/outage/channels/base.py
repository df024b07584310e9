"""One sender thread per channel: a queue, a rate limit, retries, digests.

While a channel waits for its rate limit, notices keep queueing; the next
message then carries all of them (up to `max_batch` stations). So an alert
storm across many stations becomes a few digests, never more messages than
the chat platform accepts.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rules.outage.alerts import Notice

__all__ = ["ChannelSender", "Delivery", "DeliveryError", "RateLimiter", "SenderStats"]

log = logging.getLogger("waystation.rules.channels")

MAX_BACKOFF_S = 30.0
SAFETY_S = 0.25


class DeliveryError(Exception):
    """A message did not go out; `retry` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class Delivery(Protocol):
    def send(self, notices: Sequence[Notice]) -> None:
        """Send one message carrying these station notices, or raise DeliveryError."""


class RateLimiter:
    """At most `count` messages in any `period_s` (a sliding window, as the platforms count)."""

    def __init__(
        self, count: int, period_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.count = count
        self.period_s = period_s
        self.clock = clock
        self.sent: deque[float] = deque()

    def wait_s(self) -> float:
        """Seconds until another message may go (0 if it may now)."""
        now = self.clock()
        # The platform counts arrivals: a little margin covers network jitter.
        period = self.period_s + SAFETY_S
        while self.sent and now - self.sent[0] >= period:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.count else self.sent[0] + period - now

    def take(self) -> None:
        self.sent.append(self.clock())


@dataclass
class SenderStats:
    messages: int = 0
    notices: int = 0
    retries: int = 0
    failed: int = 0


class ChannelSender:
    def __init__(
        self,
        label: str,
        delivery: Delivery,
        limiter: RateLimiter,
        *,
        max_attempts: int = 5,
        max_batch: int = 20,
    ) -> None:
        self.label = label
        self.delivery = delivery
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.max_batch = max_batch
        self.stats = SenderStats()
        self._queue: deque[Notice] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"channel-{label}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, notices: Sequence[Notice]) -> None:
        with self._wake:
            self._queue.extend(notices)
            self._wake.notify()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (within the timeout), then stop."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout_s)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _next_batch(self) -> list[Notice] | None:
        with self._wake:
            while not self._queue:
                if self._stopping:
                    return None
                self._wake.wait()
        while (wait := self.limiter.wait_s()) > 0:
            time.sleep(min(wait, 1.0))  # notices arriving meanwhile join this message
        with self._wake:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        self.limiter.take()
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._deliver(batch)

    def _deliver(self, batch: list[Notice]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.delivery.send(batch)
            except DeliveryError as exc:
                if not exc.retry or attempt == self.max_attempts:
                    self.stats.failed += 1
                    log.error("channel %s: gave up on a message: %s", self.label, exc)  # noqa: TRY400 - the reason, not a traceback
                    return
                self.stats.retries += 1
                backoff = random.uniform(0, min(MAX_BACKOFF_S, 0.5 * 2**attempt))  # noqa: S311
                log.warning("channel %s: %s; retry in %.1f s", self.label, exc, backoff)
                time.sleep(backoff)
                while (wait := self.limiter.wait_s()) > 0:
                    time.sleep(wait)
                self.limiter.take()
            else:
                self.stats.messages += 1
                self.stats.notices += len(batch)
                return
