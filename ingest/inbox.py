"""The hand-off from paho's network thread to the writer thread.

One producer (the session's network thread), one consumer (the writer). `deque.append`
and `deque.popleft` are atomic, so messages pass without a lock; an Event
wakes the writer when it has nothing to do. Cheaper than `queue.Queue`, whose
lock and condition on every put and get showed in the profile. Unbounded by
itself: the MQTT receive-maximum bounds what the broker sends unacknowledged.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

__all__ = ["Inbox"]

T = TypeVar("T")


class Inbox(Generic[T]):
    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._arrived = threading.Event()

    def put(self, item: T) -> None:
        self._items.append(item)
        self._arrived.set()

    def put_many(self, items: list[T]) -> None:
        """A read's worth at once: one wake-up, not one a message."""
        self._items.extend(items)
        self._arrived.set()

    def __len__(self) -> int:
        return len(self._items)

    def _wait(self, timeout_s: float) -> bool:
        """Wait until an item is there; clear, check, wait, so no wake-up is missed."""
        self._arrived.clear()
        if self._items:
            return True
        self._arrived.wait(timeout_s)
        return bool(self._items)

    def take(
        self, max_items: int, max_wait_s: float, gap_s: float, idle_wait_s: float = 0.1
    ) -> list[T]:
        """Up to `max_items`, waiting at most `max_wait_s` after the first one arrived.

        A pause of `gap_s` with nothing new also closes the batch: the sender
        has stopped, most likely waiting for the acks of what is in it.
        Returns [] if nothing arrived within `idle_wait_s`.
        """
        if not self._items and not self._wait(idle_wait_s):
            return []
        deadline = time.monotonic() + max_wait_s
        batch: list[T] = []
        while True:
            while self._items and len(batch) < max_items:
                batch.append(self._items.popleft())
            remaining = deadline - time.monotonic()
            if len(batch) >= max_items or remaining <= 0:
                return batch
            if not self._wait(min(remaining, gap_s)):
                return batch
