"""The alert lifecycle, after Alertmanager: pending → firing → resolved, grouped per station.

`AlertBook.update` turns the conditions of one pass into transitions; an
alert fires once its condition has held for the rule's pending time.
`AlertBook.due` says which station groups should be notified now: a new
group after `group_wait` (so a station's burst goes out as one message),
changes to a notified group after `group_interval`, and an unchanged firing
group again after `repeat_interval`. Inhibited (under a station outage) and
silenced alerts change state but are not notified; a resolved notice goes
out only for an alert whose firing was notified.

A group is a station's alerts on one routing target (`rules.outage.routing`):
each route an alert reaches has its own groups, timers and notices, and an
alert remembers the targets its firing went out to, so its resolution goes
to each of them. An escalation target takes an alert once it has fired for
the route's `escalate_after` and is neither silenced nor inhibited then: it
is notified once (no repeats), and its resolution follows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from rules.outage.detect import SEVERITY, Condition, Rule
from rules.outage.routing import ESCALATION, ROOT, Router, SingleRoute, Target, Timers

__all__ = ["LEGACY_NOTIFIED", "Alert", "AlertBook", "AlertState", "Group", "Notice", "Transition"]

# In a state file from before routing: notified, on whatever it was routed to then.
LEGACY_NOTIFIED = "*"


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
    # The routing targets its firing went out to; its resolution must go there too.
    notified_on: set[str] = field(default_factory=set)
    inhibited: bool = False
    silenced: bool = False

    @property
    def notified(self) -> bool:
        return bool(self.notified_on)

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
    target: str = ROOT  # the route it was made for (its channels)
    escalation: bool = False  # the alerts fired too long: said to the route's escalation channels
    at_ms: int | None = None  # when it was made

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


def _default_router() -> Router:
    return SingleRoute(Target(ROOT, (), Timers(1_000, 30_000, 4 * 3_600_000)))


@dataclass
class AlertBook:
    alerts: dict[str, Alert] = field(default_factory=dict)
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)  # (target, station)
    changed: set[str] = field(default_factory=set)  # keys to persist
    removed: set[str] = field(default_factory=set)
    groups_changed: bool = False
    router: Router = field(default_factory=_default_router)

    def targets(self, alert: Alert) -> tuple[Target, ...]:
        return self.router.targets(alert.station, alert.rule.value, alert.device)

    def adopt(self, router: Router, now_ms: int) -> None:
        """Route with `router` from now on (a new config or registry, at start).

        An alert keeps every target it was told on that still exists, so a party
        that heard it fire hears it resolve even when the station is no longer
        routed to it (its operator changed in the registry); a firing alert is
        told, after the group's wait, to the routes it now reaches and was not
        told on. Groups of targets that are gone go.
        """
        self.router = router
        for key, alert in list(self.alerts.items()):
            if LEGACY_NOTIFIED in alert.notified_on:
                kept = {t.id for t in self.targets(alert) if not t.escalation}
            else:
                kept = {t for t in alert.notified_on if router.target(t) is not None}
                kept |= self._inherited_escalations(alert, alert.notified_on - kept)
            if kept != alert.notified_on:
                alert.notified_on = kept
                self.changed.add(key)
            if alert.state is AlertState.RESOLVED and not alert.notified:
                self._drop(key)
            elif alert.state is AlertState.FIRING:
                self._touch(alert, now_ms, unnotified=True)
        for group_key in list(self.groups):
            if router.target(group_key[0]) is None:
                del self.groups[group_key]
                self.groups_changed = True

    def _inherited_escalations(self, alert: Alert, gone: set[str]) -> set[str]:
        """The escalations that were told under a child's id (`root/a/b!escalation`, as
        before routes shared the escalation they inherit): now the escalating route's."""
        out = set()
        for target in self.targets(alert):
            if target.escalation:
                route = target.id.removesuffix(ESCALATION) + "/"
                if any(t.endswith(ESCALATION) and t.startswith(route) for t in gone):
                    out.add(target.id)
        return out

    def _touch_group(self, target: str, station: str, now_ms: int) -> None:
        group = self.groups.setdefault((target, station), Group())
        if group.changed_ms is None:
            group.changed_ms = now_ms
            self.groups_changed = True

    def _touch(self, alert: Alert, now_ms: int, *, unnotified: bool = False) -> None:
        """A change to notify: on the alert's routes (those not yet told, with `unnotified`)."""
        self.changed.add(alert.key)
        if alert.quiet:
            return
        for target in self.targets(alert):
            if not target.escalation and not (unnotified and target.id in alert.notified_on):
                self._touch_group(target.id, alert.station, now_ms)

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
            refired = False
            if alert is not None and alert.state is AlertState.RESOLVED and alert.notified:
                # Back before its resolution went out: it never stopped, as far as anyone was told.
                alert.state = AlertState.FIRING
                alert.resolved_ms = None
                self.changed.add(key)
                refired = True
            elif alert is None or alert.state is AlertState.RESOLVED:
                alert = Alert(key, cond.rule, cond.station, cond.device, cond.since_ms)
                self.alerts[key] = alert
                self.changed.add(key)
            was = (alert.inhibited, alert.silenced)
            was_quiet = alert.quiet
            alert.detail = cond.detail
            alert.inhibited = cond.inhibited
            alert.silenced = silenced(cond.station)
            if (alert.inhibited, alert.silenced) != was:
                self.changed.add(key)  # a restart must not take it for an untold alert
            if alert.state is AlertState.PENDING and now_ms >= cond.since_ms + pending_ms.get(
                cond.rule, 0
            ):
                alert.state = AlertState.FIRING
                alert.fired_ms = now_ms
                out.append(Transition(alert, AlertState.FIRING, now_ms))
                self._touch(alert, now_ms)
            elif alert.state is AlertState.FIRING and was_quiet and not alert.quiet:
                self._touch(alert, now_ms)  # a silence ended or the station came back
            elif refired:
                self._touch(alert, now_ms, unnotified=True)  # routes whose resolution went out
        self._resolve(conditions, now_ms, silenced, out)
        return out

    def _resolve(
        self,
        conditions: Mapping[str, Condition],
        now_ms: int,
        silenced: Callable[[str], bool],
        out: list[Transition],
    ) -> None:
        """The alerts whose condition no longer holds."""
        for key, alert in list(self.alerts.items()):
            if key in conditions:
                continue
            if alert.state is AlertState.RESOLVED:
                if alert.silenced and not silenced(alert.station):  # held until the silence ended
                    alert.silenced = False
                    self._resolution(alert, now_ms)
                continue
            if alert.state is AlertState.PENDING:
                self._drop(key)
                continue
            alert.state = AlertState.RESOLVED
            alert.resolved_ms = now_ms
            alert.silenced = silenced(alert.station)
            out.append(Transition(alert, AlertState.RESOLVED, now_ms))
            if not alert.notified:
                self._drop(key)
            elif alert.silenced:  # whoever heard it fire hears this once the silence ends
                self.changed.add(key)
            else:
                self._resolution(alert, now_ms)

    def _resolution(self, alert: Alert, now_ms: int) -> None:
        """A notified alert's resolution, due on every target that was told it fired."""
        self.changed.add(alert.key)
        for target in alert.notified_on:
            self._touch_group(target, alert.station, now_ms)

    @staticmethod
    def _escalates(alert: Alert, target: Target, now_ms: int) -> bool:
        """Firing, told to nobody's silence, and for the escalation's time (or told already)."""
        if target.escalate_after_ms is None or target.id in alert.notified_on:
            return True
        return alert.fired_ms is not None and now_ms >= alert.fired_ms + target.escalate_after_ms

    def _escalate(self, now_ms: int) -> None:
        for alert in self.alerts.values():
            if alert.state is not AlertState.FIRING or alert.quiet:
                continue
            for target in self.targets(alert):
                if (
                    target.escalation
                    and target.id not in alert.notified_on
                    and self._escalates(alert, target, now_ms)
                ):
                    self._touch_group(target.id, alert.station, now_ms)

    def _unsent(
        self, target: Target, alerts: list[Alert], now_ms: int, *, escalate: bool
    ) -> tuple[list[Alert], list[Alert]]:
        firing, resolved = [], []
        for alert in alerts:
            if alert.state is AlertState.FIRING and not alert.quiet:
                if (
                    target in self.targets(alert)
                    and (escalate or target.id in alert.notified_on or not target.escalation)
                    and self._escalates(alert, target, now_ms)
                ):
                    firing.append(alert)
            elif (
                alert.state is AlertState.RESOLVED
                and target.id in alert.notified_on
                and not alert.silenced
            ):
                resolved.append(alert)
        return firing, resolved

    @staticmethod
    def _due_at(group: Group, timers: Timers) -> int | None:
        if group.changed_ms is not None:
            if group.last_sent_ms is None:
                return group.changed_ms + timers.wait_ms
            return max(group.changed_ms, group.last_sent_ms + timers.interval_ms)
        if group.last_sent_ms is not None:
            return group.last_sent_ms + timers.repeat_ms
        return None

    def due(self, now_ms: int, *, escalate: bool = True) -> list[Notice]:
        """The notices to send now, each for one target; marks what they carry as sent.

        Not `escalate` (the stream is not proven: the alerts may have ended unseen):
        no alert is escalated now; those due are when it is again, if still firing.
        """
        if escalate:
            self._escalate(now_ms)
        by_station: dict[str, list[Alert]] = {}
        for alert in self.alerts.values():
            by_station.setdefault(alert.station, []).append(alert)
        notices = []
        for (target_id, station), group in sorted(self.groups.items()):
            target = self.router.target(target_id)
            if target is None:  # a route that is gone
                del self.groups[(target_id, station)]
                self.groups_changed = True
                continue
            at = self._due_at(group, target.timers)
            if at is None or at > now_ms:
                continue
            self.groups_changed = True
            firing, resolved = self._unsent(
                target, by_station.get(station, []), now_ms, escalate=escalate
            )
            repeat = group.changed_ms is None
            if firing or resolved:
                notices.append(Notice(station, tuple(firing), tuple(resolved), repeat,
                                      target_id, target.escalation, now_ms))  # fmt: skip
            self._sent(target_id, firing, resolved)
            if firing:
                group.last_sent_ms = now_ms
                group.changed_ms = None
            else:
                del self.groups[(target_id, station)]  # the episode is over: next time waits
        return notices

    def _sent(self, target_id: str, firing: list[Alert], resolved: list[Alert]) -> None:
        for alert in firing:
            if target_id not in alert.notified_on:
                alert.notified_on.add(target_id)
                self.changed.add(alert.key)
        for alert in resolved:
            alert.notified_on.discard(target_id)
            self.changed.add(alert.key)
            if not alert.notified:
                self._drop(alert.key)

    def next_due_ms(self, *, escalate: bool = True) -> int | None:
        times = []
        for (target_id, _), group in self.groups.items():
            target = self.router.target(target_id)
            if target is not None and (t := self._due_at(group, target.timers)) is not None:
                times.append(t)
        for alert in self.alerts.values() if escalate else ():
            if alert.state is not AlertState.FIRING or alert.quiet or alert.fired_ms is None:
                continue
            times += [
                alert.fired_ms + t.escalate_after_ms
                for t in self.targets(alert)
                if t.escalate_after_ms is not None and t.id not in alert.notified_on
            ]
        return min(times) if times else None
