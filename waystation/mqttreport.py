"""What a session says about its connection, whichever engine runs it.

The session adapter's log promise (see `waystation.mqttsession`): refusals,
unreachable brokers, losses and takeovers are WARNINGs with the standard's
reason names, repeats rate-limited, the return said once with how long it
took. Both engines report each event here, so they say the same lines in the
same cases; it also keeps `connects` and `last_connected_at`.
"""

from __future__ import annotations

import logging
import time

from waystation.logthrottle import Repeats, format_duration
from waystation.mqttreasons import (
    KEEPALIVE_TIMEOUT,
    SESSION_TAKEN_OVER,
    UNSPECIFIED_ERROR,
    Packet,
    hint,
    reason_name,
)

__all__ = ["FLAPS_FOR_TAKEOVER", "LOSSES_REPEAT_S", "STABLE_S", "ConnectionReport"]

log = logging.getLogger("waystation.mqtt")

# A connection that lasted this long was healthy: the next failure starts the
# backoff again from the beginning (a broker restarted twice in a minute must
# not find its clients 30 s away). Shorter ones (a takeover ping-pong, a broker
# that drops us at once) keep backing off, and a broker that closes the
# connection this soon after accepting it, this many times in a row, is most
# likely handing our session to another client.
STABLE_S = 10.0
FLAPS_FOR_TAKEOVER = 2
# A loss this soon after the last one, however long the connection lasted, is a
# repeat: rate-limited, and named as a likely takeover when the broker closed the
# connection without a word (Mosquitto 2.0 sends no 0x8E).
LOSSES_REPEAT_S = 300.0

# MQTT 3.1.1 CONNACK return codes as the MQTT 5 reason codes that mean the same.
_V311_CONNACK = {1: 0x84, 2: 0x85, 3: 0x88, 4: 0x86, 5: 0x87}


class ConnectionReport:
    """Connection state for the properties, and its log lines. Network thread only."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.repeats = Repeats(log)
        self.connects = 0
        self.last_connected_at: float | None = None
        self._connected_mono: float | None = None
        self._down_since: float | None = None
        self._said_down = False
        self._flaps = 0
        self._last_loss: float | None = None  # monotonic

    def starting(self) -> None:
        self._down_since = time.monotonic()

    def unreachable(self, error: OSError | None, delay: float) -> None:
        self._said_down = True
        self.repeats.warning(
            "unreachable",
            "%s: broker unreachable (%s); retrying with backoff, next in %.1f s",
            self.who,
            _describe(error),
            delay,
        )

    def no_connack(self, code: int, keepalive_s: int, delay: float) -> None:
        """The connection closed, or stayed silent, before any CONNACK."""
        why = (
            f"no CONNACK within the keepalive, {keepalive_s} s"
            if code == KEEPALIVE_TIMEOUT
            else "the connection was closed before a CONNACK"
        )
        self._said_down = True
        self.repeats.warning(
            "unreachable",
            "%s: the broker did not answer CONNECT (%s): not an MQTT port, a TLS listener "
            "reached with mqtt://, or a broker that hangs; retrying with backoff, next in %.1f s",
            self.who,
            why,
            delay,
        )

    def refused(self, code: int, *, v5: bool) -> None:
        if not v5:
            code = _V311_CONNACK.get(code, UNSPECIFIED_ERROR)
        self._said_down = True
        self.repeats.warning(
            "refused",
            "%s: the broker refused the connection: %s%s",
            self.who,
            reason_name(code, Packet.CONNACK),
            _hint(code),
        )

    def connected(self, session_present: bool) -> None:
        now = time.monotonic()
        self._connected_mono = now
        self.last_connected_at = time.time()
        self.connects += 1
        down_for = now - self._down_since if self._down_since is not None else 0.0
        self._down_since = None
        for key in ("refused", "unreachable"):
            self.repeats.clear(key)
        if self._said_down:
            self._said_down = False
            log.warning(
                "%s connected again after %s (session present: %s)",
                self.who,
                format_duration(down_for),
                session_present,
            )
        elif self.connects == 1:
            log.info("%s connected", self.who)

    def lost_after(self) -> float | None:
        """How long the connection that just ended lasted (None if none was up)."""
        if self._connected_mono is None:
            return None
        now = time.monotonic()
        lasted = now - self._connected_mono
        self._connected_mono = None
        self._down_since = now
        return lasted

    @staticmethod
    def stable(lasted: float) -> bool:
        return lasted >= STABLE_S

    def lost(self, lasted: float, code: int, *, from_broker: bool, delay: float) -> None:
        describe = _loss
        now = time.monotonic()
        if self.stable(lasted):  # a healthy connection ended: a change of state
            self._lost_after_stable(code, lasted, delay, from_broker=from_broker, now=now)
            return
        # Dropped soon after connecting, again and again: said once, then counted.
        self._last_loss = now
        self._flaps += 1
        taken = reason_name(SESSION_TAKEN_OVER, Packet.DISCONNECT)
        if from_broker and code == SESSION_TAKEN_OVER:
            key, what = "takeover", f"session taken over: {hint(code)} ({taken})"
        elif self._flaps >= FLAPS_FOR_TAKEOVER and code == UNSPECIFIED_ERROR:
            key, what = (
                "takeover",
                (
                    f"the broker closed the connection {lasted:.1f} s after accepting it, "
                    f"{self._flaps} times in a row: most likely another client is connecting "
                    f"with the same client id (session takeover, {taken}); give each its own id"
                ),
            )
        else:
            loss = describe(code, from_broker=from_broker)
            key, what = "flapping", f"lost the broker {lasted:.1f} s after connecting: {loss}"
        if self.repeats.warning(key, "%s: %s; reconnecting with backoff", self.who, what):
            self._said_down = True

    def _lost_after_stable(
        self, code: int, lasted: float, delay: float, *, from_broker: bool, now: float
    ) -> None:
        """A connection that had lasted ended: said, unless losses repeat (then counted)."""
        self._flaps = 0
        repeated = self._last_loss is not None and now - self._last_loss < LOSSES_REPEAT_S
        self._last_loss = now
        if not repeated:  # a new story: each of its kinds of loss is said again
            for key in ("flapping", "takeover", "lost", "lost again"):
                self.repeats.clear(key)
        what = _loss(code, from_broker=from_broker)
        if repeated and code == UNSPECIFIED_ERROR and not from_broker:
            what += (
                "; closed again within 5 min, and the broker takes us back at once: a "
                "broker that restarts, or else another client with the same client id "
                f"taking the session over ({reason_name(SESSION_TAKEN_OVER, Packet.DISCONNECT)}"
                "; give each client its own id); said once, then counted"
            )
        if self.repeats.warning(
            "lost again" if repeated else "lost",
            "%s lost the broker after %s: %s; reconnecting in %.1f s",
            self.who,
            format_duration(lasted),
            what,
            delay,
        ):
            self._said_down = True

    def subscription_refused(self, topic_filter: str, code: int) -> None:
        self.repeats.warning(
            f"suback {topic_filter}",
            "%s: the broker refused the subscription to %s: %s%s",
            self.who,
            topic_filter,
            reason_name(code, Packet.SUBACK),
            _hint(code),
        )


def _hint(code: int) -> str:
    text = hint(code)
    return f" ({text})" if text else ""


def _describe(error: OSError | None) -> str:
    if error is None:
        return "no answer"
    text = error.strerror or str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def _loss(code: int, *, from_broker: bool) -> str:
    if from_broker:  # the broker said why (0x8E: "session taken over" and its hint)
        return f"{reason_name(code, Packet.DISCONNECT)}{_hint(code)}"
    if code == KEEPALIVE_TIMEOUT:  # our own keepalive running out
        return "no answer within the keepalive (Keep Alive timeout, 0x8D)"
    return "the connection was closed"
