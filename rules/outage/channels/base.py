"""One sender thread per channel: the channel's waiting notices, a rate limit, retries, digests.

The notices wait in the state database (`NoticeQueue`), not in memory: a
sender reads its channel's, sends up to `max_batch` stations in one message
(several waiting notices of one station merged into one, see
`rules.outage.notices.merge`), and deletes them only once delivered. A
failure that may pass (timeout, 5xx, 429, a robot's "too fast") is retried
for as long as the notice matters (`retry_for`, at least a day by default)
with the one backoff (`waystation.backoff`, honouring Retry-After); a
failure that cannot pass (a 4xx, a refused login) gives the message up,
kept in the database with its reason, counted and logged at ERROR. A
channel failing for longer than `failing_after` says so in the log, and the
service raises `channel_failing` on the other channels.

While a channel waits for its rate limit or its backoff, notices keep
queueing; the next message then carries all of them. So an alert storm
across many stations becomes a few digests, never more messages than the
chat platform accepts.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from rules.outage.alerts import Notice
from rules.outage.config import ChannelConfig
from rules.outage.messages import Renderer
from rules.outage.notices import merge
from rules.outage.statedb import PendingNotice, StateError
from waystation.backoff import Backoff
from waystation.logthrottle import Repeats, format_duration
from waystation.mqttsession import MqttSession
from waystation.redact import register_secret

__all__ = [
    "ChannelContext",
    "ChannelSender",
    "Delivery",
    "DeliveryError",
    "NoticeQueue",
    "RateLimiter",
    "SenderStats",
]

log = logging.getLogger("waystation.rules.channels")

SAFETY_S = 0.25
RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 30.0  # a channel back from an outage delivers within half a minute
RETRY_FLOOR_S = 0.5


class DeliveryError(Exception):
    """A message did not go out; `retry` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """What the rules service shares with its channels."""

    session: MqttSession | None = None  # the service's own: the mqtt channel publishes on it
    clock: Callable[[], float] = field(default=time.time)  # signed robots stamp their signatures


C = TypeVar("C", bound=ChannelConfig)


class Delivery(ABC, Generic[C]):
    """One channel: every one is built as `Channel(config, renderer, context)`.

    `config` is its model from the rules settings, `renderer` writes the
    message in the configured language. Building registers the channel's
    secrets with the log's redaction (nothing is connected yet). `send` is
    called from the channel's sender thread only, one message at a time, and
    either delivers or raises DeliveryError saying whether a retry may help;
    it gives up on its own within the config's `timeout`.
    """

    # The MQTT channel: its notices wait for the broker, and it is not told about losing it.
    needs_broker: ClassVar[bool] = False
    # The most a message may carry (its text, UTF-8), or None: no limit. The sender puts
    # fewer stations in a message to stay under it; one station alone is cut to fit.
    max_bytes: ClassVar[int | None] = None
    markdown: ClassVar[bool] = False  # its message is the renderer's markdown, not its text

    def __init__(self, config: C, renderer: Renderer, context: ChannelContext) -> None:
        self.config = config
        self.renderer = renderer
        self.context = context
        for secret in self.secrets():
            register_secret(secret)

    def secrets(self) -> Iterable[str | None]:
        """What of the settings must never show in a log line (beyond URL shapes)."""
        return ()

    @abstractmethod
    def send(self, notices: Sequence[Notice]) -> None:
        """Send one message carrying these station notices, or raise DeliveryError."""

    def measure(self, notices: Sequence[Notice]) -> int:
        """The size of the message these notices make, in the unit of `max_bytes`."""
        render = self.renderer.markdown if self.markdown else self.renderer.text
        return len(render(notices)[1].encode())


class NoticeQueue(Protocol):
    """Where a channel's notices wait (the state database). Thread-safe; a write that
    fails raises StateError and changes nothing."""

    def pending(self, channel: str) -> list[PendingNotice]: ...

    def delivered(self, ids: Sequence[int]) -> None: ...

    def attempted(self, ids: Sequence[int], error: str) -> None: ...

    def give_up(self, ids: Sequence[int], error: str, now_ms: int) -> None: ...


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
    messages: int = 0  # messages delivered
    notices: int = 0  # notices they carried
    retries: int = 0  # attempts that failed and will be tried again
    failed: int = 0  # notices given up


class ChannelSender:
    """A context for one channel's thread. `failing_since` is read by the service's passes."""

    def __init__(
        self,
        label: str,
        delivery: Delivery[Any],
        limiter: RateLimiter,
        queue: NoticeQueue,
        *,
        max_batch: int = 20,
        retry_for_s: float = 24 * 3600.0,
        failing_after_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.label = label
        self.delivery = delivery
        self.limiter = limiter
        self.queue = queue
        self.needs_broker = delivery.needs_broker
        self.max_batch = max_batch
        self.retry_for_s = retry_for_s
        self.failing_after_s = failing_after_s
        self.clock = clock
        self.stats = SenderStats()
        self.failing_since: float | None = None  # epoch s of the first failure in a row
        self.last_error: str | None = None
        self._backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S, RETRY_FLOOR_S)
        self._repeats = Repeats(log)
        self._next_try = 0.0  # monotonic
        # Delivered (None) or given up (why, when) but not yet recorded: the state file
        # took no writes. Never sent again; recorded as soon as it takes them.
        self._settled: dict[int, tuple[str, int] | None] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._stop_by = 0.0
        self._thread = threading.Thread(target=self._run, name=f"channel-{label}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New notices were written for this channel."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is waiting (unless the channel is failing, and within the timeout), then stop.

        What is not sent stays in the database for the next start.
        """
        self._stop_by = time.monotonic() + timeout_s
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s + 1)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def failing_for_s(self) -> float:
        return 0.0 if self.failing_since is None else self.clock() - self.failing_since

    def _sleep(self, seconds: float | None) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception:  # noqa: BLE001 - a task boundary: the channel must go on
                if self._stopping:
                    return  # e.g. the state file closed under an attempt that outlived stop()
                self._repeats.log(logging.ERROR, "unexpected", "channel %s: unexpected error",
                                  self.label, exc_info=True)  # fmt: skip
                self._sleep(RETRY_INITIAL_S)

    def _step(self) -> bool:
        """One round: wait if there is reason to, or send one message. False: stop now."""
        now = time.monotonic()
        if self._stopping and (now >= self._stop_by or self.failing_since is not None):
            return False
        if now < self._next_try:
            self._sleep(self._next_try - now)
            return True
        if self._settled and not self._record_settled():
            self._sleep(RETRY_INITIAL_S)  # the state file still takes no writes
        waiting = [p for p in self.queue.pending(self.label) if p.id not in self._settled]
        if not waiting:
            if self._stopping:
                return False
            self._sleep(None)
            return True
        if (wait := self.limiter.wait_s()) > 0:
            self._sleep(min(wait, 1.0))  # notices arriving meanwhile join this message
            return True
        batch = self._take(waiting)
        self.limiter.take()
        self._send(batch)
        return True

    def _take(self, waiting: list[PendingNotice]) -> list[list[PendingNotice]]:
        """Up to `max_batch` stations, each with all its waiting notices, oldest station first;
        fewer if the message would be larger than the channel takes."""
        by_station: dict[str, list[PendingNotice]] = {}
        for p in waiting:
            if p.station in by_station or len(by_station) < self.max_batch:
                by_station.setdefault(p.station, []).append(p)
        batch = list(by_station.values())
        limit = self.delivery.max_bytes
        if limit is not None:
            while len(batch) > 1 and self.delivery.measure(_merged(batch)) > limit:
                batch.pop()  # the newest station waits for the next message
        return batch

    def _send(self, batch: list[list[PendingNotice]]) -> None:
        ids = [p.id for station in batch for p in station]
        notices = _merged(batch)
        try:
            self.delivery.send(notices)
        except DeliveryError as exc:
            self._failed(batch, ids, exc)
        else:
            self._settle(ids, None)
            self.stats.messages += 1
            self.stats.notices += len(notices)
            self._backoff.reset()
            if self.failing_since is not None:
                lasted = self.clock() - self.failing_since
                log.warning(
                    "channel %s delivers again after %s failing",
                    self.label,
                    format_duration(lasted),
                )
                self._repeats.clear("failing")
                self._repeats.clear("failing too long")
            self.failing_since = None
            self.last_error = None

    def _settle(self, ids: list[int], gave_up: tuple[str, int] | None) -> None:
        """Delivered (None) or given up: recorded now, or kept in memory until it can be."""
        for i in ids:
            self._settled[i] = gave_up
        self._record_settled()

    def _record_settled(self) -> bool:
        """Write what is settled to the state file; False if it takes no writes yet."""
        delivered = [i for i, why in self._settled.items() if why is None]
        given_up: dict[tuple[str, int], list[int]] = {}
        for i, why in self._settled.items():
            if why is not None:
                given_up.setdefault(why, []).append(i)
        try:
            if delivered:
                self.queue.delivered(delivered)
            for (error, at_ms), ids in given_up.items():
                self.queue.give_up(ids, error, at_ms)
        except StateError as exc:
            self._repeats.log(
                logging.ERROR,
                "state",
                "channel %s: %s; %d sent or given-up notice(s) kept in memory (not sent again) "
                "until the state file takes writes",
                self.label,
                exc,
                len(self._settled),
            )
            return False
        self._settled.clear()
        if self._repeats.clear("state") is not None:
            log.warning("channel %s: the state file takes writes again", self.label)
        return True

    def _failed(self, batch: list[list[PendingNotice]], ids: list[int], exc: DeliveryError) -> None:
        now = self.clock()
        if not exc.retry:
            self._settle(ids, (str(exc), int(now * 1000)))
            self.stats.failed += len(ids)
            log.error(
                "channel %s: gave up on a message for %d station(s), which it refuses: %s",
                self.label,
                len(batch),
                exc,
            )
            return
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = str(exc)
        expired = [
            p.id
            for station in batch
            for p in station
            if now - p.created_ms / 1000 > self.retry_for_s
        ]
        if expired:
            self._settle(expired, (f"still failing after {self.retry_for_s:.0f} s: {exc}",
                                   int(now * 1000)))  # fmt: skip
            self.stats.failed += len(expired)
            log.error("channel %s: gave up on %d notice(s) after %s of retries: %s",
                      self.label, len(expired), format_duration(self.retry_for_s), exc)  # fmt: skip
        gone = set(expired)
        with suppress(StateError):  # only a count: the next attempt counts again
            self.queue.attempted([i for i in ids if i not in gone], str(exc))
        self.stats.retries += 1
        delay = self._backoff.next_delay(exc.retry_after_s)
        self._next_try = time.monotonic() + delay
        self._repeats.warning(
            "failing",
            "channel %s: %s; notices wait and are retried with backoff",
            self.label,
            exc,
        )
        if self.failing_for_s >= self.failing_after_s:
            self._repeats.log(
                logging.ERROR,
                "failing too long",
                "channel %s failing for %s: %s; reported on the other channels",
                self.label,
                format_duration(self.failing_for_s),
                exc,
            )


def _merged(batch: list[list[PendingNotice]]) -> list[Notice]:
    """A notice per station: its waiting ones merged."""
    return [merge([p.notice for p in station]) for station in batch]
