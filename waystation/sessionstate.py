"""What both MQTT engines keep and say about themselves the same way.

The connection's state for the properties and waits of `MqttSession`, its log
(`ConnectionReport`), its reconnect backoff and the wait for a publish's PUBACK
(`publish_acked`), all made here; each engine defines `publish`.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from waystation.logthrottle import Repeats
from waystation.mqttreport import ConnectionReport
from waystation.pubackwait import PubackWaiter

if TYPE_CHECKING:
    from waystation.backoff import Backoff
    from waystation.mqttsession import SessionCallbacks, SessionOptions
    from waystation.settings import MqttSettings

__all__ = ["SessionState"]

log = logging.getLogger("waystation.mqtt")


class SessionState(ABC):
    def __init__(
        self,
        settings: MqttSettings,
        options: SessionOptions,
        callbacks: SessionCallbacks,
        backoff: Backoff,
    ) -> None:
        self._settings = settings
        self._options = options
        self._callbacks = callbacks
        self._who = f"{options.label} ({settings}, client id {options.client_id})"
        self._report = ConnectionReport(self._who)
        self._backoff = backoff
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._waiter = PubackWaiter()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    @property
    def last_connected_at(self) -> float | None:
        return self._report.last_connected_at

    @property
    def connects(self) -> int:
        return self._report.connects

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    @property
    def _repeats(self) -> Repeats:  # what the tests read of either engine
        return self._report.repeats

    @abstractmethod
    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> int:
        """Queue a message; returns its packet id (see `MqttSession.publish`)."""

    def _call(self, callback: Callable[..., None] | None, *args: Any) -> None:
        """A user's callback, from the network thread, which must go on whatever it raises."""
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # a task boundary
            log.exception("%s: error in a session callback", self._options.label)

    def publish_acked(
        self, topic: str, payload: str | bytes, timeout_s: float, *, retain: bool = False
    ) -> int | None:
        return self._waiter.publish(lambda: self.publish(topic, payload, 1, retain), timeout_s)
