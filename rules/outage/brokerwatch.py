"""Whether the rules may trust the stream now: the broker proven to serve us, and the grace after.

Connected is not enough. A broker can accept the connection and the
subscription and still deliver nothing (an account that may not read, an
ACL or bridge change), and a broker shutting down sends every agent's will
and then saves its database before it drops us, for as long as the save
takes. So the rules publish a probe, a numbered message on a topic they
read (`waystation/probe/{client id}`), and the stream counts as *proven*
only while the probes come back:

- an agent's will counts once a probe sent after it came back (the broker
  was still serving after sending the will); a will that is not confirmed
  when the connection goes waits for the agents to have had their chance;
- a held will counts once the broker has been proven for a while since the
  agents could return (`will_grace_ms` after the will, the last
  `return_ms` of it proven), however often the broker blipped meanwhile;
- absence of data raises nothing until the stream is proven and, per
  device, its grace is over: its agent's reconnect backoff plus its own
  interval (`grace_ms(device)`); a loss that interrupts a grace extends it
  by the loss's length instead of starting it again, so a broker that
  restarts every few seconds does not keep the rules blind for good;
- blind (not giving verdicts) for `lost_after_ms`, in one spell that only a
  stretch of `clear_ms` with verdicts ends, is `monitoring_lost`: a broker in
  a crash loop is reported even when each outage is short.

All methods are called under the service's lock, with epoch ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["FIRST_PROBE_MS", "PROBE_EVERY_MS", "PROBE_STALE_MS", "BrokerWatch", "Cause"]

PROBE_EVERY_MS = 1000  # a probe a second while connected
# No probe back for this long while connected: the stream is not proven. Well above
# what a loaded machine delays a pass by; a broker that stops delivering is found in
# this time (and an account that never could, at once: no probe ever came back).
PROBE_STALE_MS = 15_000
FIRST_PROBE_MS = (
    5000  # connected this long and no probe back yet: said (an account that may not read)
)
# A live agent whose connection had lasted is back within its first backoff step
# (about a second) of the broker returning; this long proven lets a held will count.
AGENT_RETURN_MS = 5000
CLEAR_MS = 10_000  # verdicts this long end a blind spell (at most: `lost_after` if shorter)
# Losses in one blind spell that make it a crash loop, counted whole: two restarts by
# an operator in a minute are not one, a broker going away again and again is.
LOSSES_FOR_LOOP = 3


class Cause:
    """Why the stream is not proven, for the log and `monitoring_lost`'s detail."""

    DISCONNECTED = "disconnected"
    NOT_SUBSCRIBED = "not_subscribed"
    NO_PROBE = "no_probe"


@dataclass
class BrokerWatch:
    started_ms: int
    will_grace_ms: int  # a held will counts this long after it came (and the broker proven)
    base_grace_ms: int  # verdicts (global) resume this long after the stream is proven again
    lost_after_ms: int  # blind this long: monitoring_lost
    # Per device, and per station as `station:{id}`: its absence grace after the stream is back.
    device_grace_ms: Mapping[str, int] = field(default_factory=dict)
    stale_ms: int = PROBE_STALE_MS
    probes_sent: int = 0
    probe_back: int = -1  # the highest probe number that came back
    probe_back_ms: int | None = None
    probe_sent_ms: int = 0
    connected: bool = False
    subscribed: bool = False
    connected_ms: int | None = None
    proven_since_ms: int | None = None
    lost_at_ms: int | None = None  # when the last proven stretch ended (or the start)
    grace_from_ms: int = 0  # per-device graces count from here
    spell_since_ms: int | None = None  # the current blind spell
    spell_losses: int = 0  # losses of the proven stream in it
    verdicts_since_ms: int | None = None
    cause: str = Cause.DISCONNECTED

    def __post_init__(self) -> None:
        self.lost_at_ms = self.started_ms
        self.grace_from_ms = self.started_ms
        self.spell_since_ms = self.started_ms

    # --- what happens ------------------------------------------------------------------

    def on_connected(self, now_ms: int) -> None:
        self.connected = True
        self.connected_ms = now_ms

    def on_disconnected(self, now_ms: int) -> None:
        self.connected = False
        self.subscribed = False
        self.update(now_ms)

    def next_probe(self, now_ms: int) -> int:
        """The number of the probe about to be published."""
        n = self.probes_sent
        self.probes_sent += 1
        self.probe_sent_ms = now_ms
        return n

    def probe_due(self, now_ms: int) -> bool:
        return self.connected and now_ms - self.probe_sent_ms >= PROBE_EVERY_MS

    def probe_returned(self, number: int, now_ms: int) -> bool:
        """A probe came back; True if it confirms something new."""
        if number <= self.probe_back or number >= self.probes_sent:
            return False  # an old one, or not ours (a stale retained message, a stranger)
        self.probe_back = number
        self.probe_back_ms = now_ms
        self.update(now_ms)
        return True

    # --- what it means -----------------------------------------------------------------

    def _proven_now(self, now_ms: int) -> bool:
        if not self.connected:
            self.cause = Cause.DISCONNECTED
            return False
        if not self.subscribed:
            self.cause = Cause.NOT_SUBSCRIBED
            return False
        back = self.probe_back_ms
        fresh = (
            back is not None
            and self.connected_ms is not None
            and back >= self.connected_ms
            and now_ms - back <= self.stale_ms
        )
        if not fresh:
            self.cause = Cause.NO_PROBE
        return fresh

    def update(self, now_ms: int) -> None:
        """Follow the stream's state to `now_ms` (every pass, and on every change)."""
        proven = self._proven_now(now_ms)
        if proven and self.proven_since_ms is None:
            self.proven_since_ms = now_ms
            lost = self.lost_at_ms if self.lost_at_ms is not None else now_ms
            if lost < self.grace_from_ms + self.longest_grace_ms:
                self.grace_from_ms += now_ms - lost  # a grace interrupted: extended, not restarted
            else:
                self.grace_from_ms = now_ms
            self.grace_from_ms = min(self.grace_from_ms, now_ms)
        elif not proven and self.proven_since_ms is not None:
            self.proven_since_ms = None
            self.lost_at_ms = now_ms
            if self.spell_since_ms is None:
                self.spell_since_ms = now_ms
                self.spell_losses = 0
            self.spell_losses += 1
        verdicts = self.verdicts(now_ms)
        if not verdicts:
            self.verdicts_since_ms = None
            if self.spell_since_ms is None:
                self.spell_since_ms = now_ms
                self.spell_losses = 0
        else:
            if self.verdicts_since_ms is None:
                self.verdicts_since_ms = now_ms
            if now_ms - self.verdicts_since_ms >= min(CLEAR_MS, self.lost_after_ms):
                self.spell_since_ms = None

    @property
    def longest_grace_ms(self) -> int:
        return max([self.base_grace_ms, *self.device_grace_ms.values()])

    @property
    def proven(self) -> bool:
        return self.proven_since_ms is not None

    def verdicts(self, now_ms: int) -> bool:
        """May missing data raise alerts at all? Proven, and the base grace over."""
        since = self.proven_since_ms
        return since is not None and now_ms >= self.grace_from_ms + self.base_grace_ms

    def absence_allowed(self, who: str, now_ms: int) -> bool:
        """May the silence of `who` (a device, or `station:{id}`) count now?"""
        if not self.verdicts(now_ms):
            return False
        return now_ms >= self.grace_from_ms + self.device_grace_ms.get(who, self.base_grace_ms)

    def release_due(self, offline_since_ms: int, now_ms: int) -> bool:
        """May a held will count now: the agents had their chance to come back?"""
        since = self.proven_since_ms
        return (
            since is not None
            and now_ms - offline_since_ms >= self.will_grace_ms
            and now_ms - since >= min(AGENT_RETURN_MS, self.will_grace_ms)
        )

    def monitoring_lost(self, now_ms: int) -> bool:
        """Blind for `lost_after_ms` now: cut off all along, or the broker keeps going away.

        A single outage counts from its start while it lasts (the grace after it
        does not: an orderly restart is not an alert); a spell of LOSSES_FOR_LOOP
        losses or more (a crash loop) counts whole, grace periods included, until
        verdicts hold for `CLEAR_MS`.
        """
        if self.verdicts(now_ms):
            return False
        lost = self.lost_at_ms
        if (
            self.proven_since_ms is None
            and lost is not None
            and now_ms - lost >= self.lost_after_ms
        ):
            return True
        since = self.spell_since_ms
        return (
            since is not None
            and self.spell_losses >= LOSSES_FOR_LOOP
            and now_ms - since >= self.lost_after_ms
        )

    @property
    def in_spell(self) -> bool:
        return self.spell_since_ms is not None
