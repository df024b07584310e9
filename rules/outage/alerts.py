"""The alert lifecycle, after Alertmanager: pending → firing → resolved, grouped per station.

`AlertBook.update` turns the conditions of one pass into transitions; an
alert fires once its condition has held for the rule's pending time.
`AlertBook.due` says which station groups should be notified now: a new
group after `group_wait` (so a station's burst goes out as one message),
changes to a notified group after `group_interval`, and an unchanged firing
group again after `repeat_interval`. Inhibited (under a station outage) and
silenced alerts change state but are not notified; a resolved notice goes
out only for an alert whose firing was notified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from rules.outage.detect import SEVERITY, Condition, Rule

__all__ = ["Alert", "AlertBook", "AlertState", "Group", "Notice", "Transition"]


class AlertState(StrEnum):
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass
class Alert:
    key: str
    rule: Rule
    station: str
    device: str | None
    since_ms: int
    state: AlertState = AlertState.PENDING
    detail: str = ""
    fired_ms: int | None = None
    resolved_ms: int | None = None
    notified: bool = False  # its firing went out; its resolution must too
    inhibited: bool = False
    silenced: bool = False

    @property
    def severity(self) -> str:
        return SEVERITY[self.rule]

    @property
    def quiet(self) -> bool:
        return self.inhibited or self.silenced


@dataclass(frozen=True)
class Transition:
    alert: Alert
    state: AlertState
    at_ms: int


@dataclass(frozen=True)
class Notice:
    """One message's worth for one station: what fires and what has resolved."""

    station: str
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    repeat: bool = False

    @property
    def still_firing(self) -> tuple[Alert, ...]:
        """The firing alerts this notice does not also resolve.

        A notice merged from a firing that could not be delivered and the
        resolution that followed carries the alert in both lists: it says
        both, in one message, so no resolution arrives before its firing.
        """
        ended = {(a.key, a.since_ms) for a in self.resolved}
        return tuple(a for a in self.firing if (a.key, a.since_ms) not in ended)


@dataclass
class Group:
    changed_ms: int | None = None  # first unsent change
    last_sent_ms: int | None = None


@dataclass
class AlertBook:
    alerts: dict[str, Alert] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # keys to persist
    removed: set[str] = field(default_factory=set)
    groups_changed: bool = False

    def _touch(self, alert: Alert, now_ms: int) -> None:
        self.changed.add(alert.key)
        if not alert.quiet or alert.notified:
            group = self.groups.setdefault(alert.station, Group())
            if group.changed_ms is None:
                group.changed_ms = now_ms
                self.groups_changed = True

    def _drop(self, key: str) -> None:
        del self.alerts[key]
        self.changed.discard(key)
        self.removed.add(key)

    def update(
        self,
        conditions: Mapping[str, Condition],
        now_ms: int,
        pending_ms: Mapping[str, int],
        silenced: Callable[[str], bool],
    ) -> list[Transition]:
        """Apply one pass's conditions; the state changes, for the `alert` measurement."""
        out: list[Transition] = []
        for key, cond in conditions.items():
            alert = self.alerts.get(key)
            if alert is not None and alert.state is AlertState.RESOLVED and alert.notified:
                # Back before its resolution went out: it never stopped, as far as anyone was told.
                alert.state = AlertState.FIRING
                alert.resolved_ms = None
                self.changed.add(key)
            elif alert is None or alert.state is AlertState.RESOLVED:
                alert = Alert(key, cond.rule, cond.station, cond.device, cond.since_ms)
                self.alerts[key] = alert
                self.changed.add(key)
            was_quiet = alert.quiet
            alert.detail = cond.detail
            alert.inhibited = cond.inhibited
            alert.silenced = silenced(cond.station)
            if alert.state is AlertState.PENDING and now_ms >= cond.since_ms + pending_ms.get(
                cond.rule, 0
            ):
                alert.state = AlertState.FIRING
                alert.fired_ms = now_ms
                out.append(Transition(alert, AlertState.FIRING, now_ms))
                self._touch(alert, now_ms)
            elif alert.state is AlertState.FIRING and was_quiet and not alert.quiet:
                self._touch(alert, now_ms)  # a silence ended or the station came back
        for key, alert in list(self.alerts.items()):
            if key in conditions or alert.state is AlertState.RESOLVED:
                continue
            if alert.state is AlertState.PENDING:
                self._drop(key)
                continue
            alert.state = AlertState.RESOLVED
            alert.resolved_ms = now_ms
            alert.silenced = silenced(alert.station)
            out.append(Transition(alert, AlertState.RESOLVED, now_ms))
            if alert.notified and not alert.silenced:
                self._touch(alert, now_ms)
            else:
                self._drop(key)
        return out

    def _unsent(self, station: str) -> tuple[list[Alert], list[Alert]]:
        firing, resolved = [], []
        for alert in self.alerts.values():
            if alert.station != station:
                continue
            if alert.state is AlertState.FIRING and not alert.quiet:
                firing.append(alert)
            elif alert.state is AlertState.RESOLVED and alert.notified:
                resolved.append(alert)
        return firing, resolved

    def _due_at(
        self, group: Group, group_wait_ms: int, group_interval_ms: int, repeat_ms: int
    ) -> int | None:
        if group.changed_ms is not None:
            if group.last_sent_ms is None:
                return group.changed_ms + group_wait_ms
            return max(group.changed_ms, group.last_sent_ms + group_interval_ms)
        if group.last_sent_ms is not None:
            return group.last_sent_ms + repeat_ms
        return None

    def due(
        self, now_ms: int, group_wait_ms: int, group_interval_ms: int, repeat_ms: int
    ) -> list[Notice]:
        """The notices to send now; marks what they carry as sent."""
        notices = []
        for station, group in sorted(self.groups.items()):
            at = self._due_at(group, group_wait_ms, group_interval_ms, repeat_ms)
            if at is None or at > now_ms:
                continue
            self.groups_changed = True
            firing, resolved = self._unsent(station)
            repeat = group.changed_ms is None
            if firing or resolved:
                notices.append(Notice(station, tuple(firing), tuple(resolved), repeat))
            for alert in firing:
                if not alert.notified:
                    alert.notified = True
                    self.changed.add(alert.key)
            for alert in resolved:
                self._drop(alert.key)
            if firing:
                group.last_sent_ms = now_ms
                group.changed_ms = None
            else:
                del self.groups[station]  # the episode is over: next time waits group_wait
        return notices

    def next_due_ms(self, group_wait_ms: int, group_interval_ms: int, repeat_ms: int) -> int | None:
        times = [
            t
            for g in self.groups.values()
            if (t := self._due_at(g, group_wait_ms, group_interval_ms, repeat_ms)) is not None
        ]
        return min(times) if times else None
