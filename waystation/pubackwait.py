"""Waiting for one publish's PUBACK: what `publish_acked` of either MQTT engine is made of."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["PubackWaiter"]


class PubackWaiter:
    """Waits for one publish's PUBACK: `publish_acked` of either engine is made of it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._awaited: dict[int, int | None] = {}  # packet id -> PUBACK reason, once it came

    def publish(self, publish: Callable[[], int], timeout_s: float) -> int | None:
        """Run `publish` (returning the packet id) and wait for its PUBACK's reason code,
        None if none came within `timeout_s`."""
        with self._cond:  # held across the publish: its PUBACK cannot slip by unseen
            mid = publish()
            self._awaited[mid] = None
            try:
                self._cond.wait_for(lambda: self._awaited[mid] is not None, timeout_s)
                return self._awaited[mid]
            finally:
                del self._awaited[mid]

    def arrived(self, mid: int, code: int) -> None:
        """A PUBACK came (the engine's network thread)."""
        with self._cond:
            if mid in self._awaited:
                self._awaited[mid] = code
                self._cond.notify_all()
