"""The alert lifecycle on an explicit clock: pending, firing, grouping, repeats, silences."""

from __future__ import annotations

from rules.outage.alerts import AlertBook, AlertState, Notice
from rules.outage.detect import Condition, Rule
from rules.outage.routing import ROOT, SingleRoute, Target, Timers

WAIT, INTERVAL, REPEAT = 1_000, 30_000, 3_600_000
T0 = 1_800_000_000_000


def cond(
    rule: Rule, station: str = "s1", device: str | None = "d1", since: int = T0, **kw: object
) -> Condition:
    return Condition(rule, station, device, since, **kw)  # type: ignore[arg-type]


def step(
    book: AlertBook,
    conds: list[Condition],
    now: int,
    pending: dict[str, int] | None = None,
    silenced: frozenset[str] = frozenset(),
) -> list[Notice]:
    book.update({c.key: c for c in conds}, now, pending or {}, silenced.__contains__)
    return book.due(now)


def new_book() -> AlertBook:
    return AlertBook(router=SingleRoute(Target(ROOT, ("log",), Timers(WAIT, INTERVAL, REPEAT))))


def test_pending_then_firing_then_resolved_with_one_notice_each() -> None:
    book = new_book()
    silent = cond(Rule.DEVICE_SILENT)
    pending = {"device_silent": 120_000}
    assert step(book, [silent], T0, pending) == []
    assert book.alerts[silent.key].state is AlertState.PENDING
    assert step(book, [silent], T0 + 119_999, pending) == []
    assert step(book, [silent], T0 + 120_000, pending) == []  # firing; group_wait starts
    assert book.alerts[silent.key].state is AlertState.FIRING
    [notice] = step(book, [silent], T0 + 121_000, pending)
    assert [a.key for a in notice.firing] == [silent.key]
    assert not notice.resolved
    assert step(book, [silent], T0 + 122_000, pending) == []  # no duplicate
    assert step(book, [], T0 + 130_000, pending) == []  # resolved; waits for group_interval
    [done] = step(book, [], T0 + 121_000 + INTERVAL, pending)
    assert [a.key for a in done.resolved] == [silent.key]
    assert not done.firing
    assert book.alerts == {}
    assert book.groups == {}


def test_a_pending_alert_that_clears_is_never_heard_of() -> None:
    book = new_book()
    c = cond(Rule.DEVICE_SILENT)
    step(book, [c], T0, {"device_silent": 60_000})
    assert step(book, [], T0 + 1_000) == []
    assert book.alerts == {}


def test_a_station_burst_is_one_notice() -> None:
    book = new_book()
    burst = [cond(Rule.DEVICE_FAULT, device=f"d{i}") for i in range(5)]
    step(book, burst[:2], T0)
    step(book, burst, T0 + 500)
    [notice] = step(book, burst, T0 + WAIT)
    assert len(notice.firing) == 5


def test_repeat_interval_reminds_while_firing() -> None:
    book = new_book()
    c = cond(Rule.AGENT_OFFLINE)
    step(book, [c], T0)
    [first] = step(book, [c], T0 + WAIT)
    assert not first.repeat
    assert step(book, [c], T0 + WAIT + REPEAT - 1) == []
    [again] = step(book, [c], T0 + WAIT + REPEAT)
    assert again.repeat
    assert [a.key for a in again.firing] == [c.key]


def test_station_outage_inhibits_the_device_alerts() -> None:
    book = new_book()
    conds = [
        cond(Rule.STATION_DOWN, device=None),
        cond(Rule.AGENT_OFFLINE, device="gw", inhibited=True),
        cond(Rule.DEVICE_SILENT, device="d1", inhibited=True),
    ]
    step(book, conds, T0)
    [notice] = step(book, conds, T0 + WAIT)
    assert [a.rule for a in notice.firing] == [Rule.STATION_DOWN]
    # Back: the station resolves; the device alerts, never notified, resolve quietly.
    step(book, [], T0 + 10_000)
    [done] = step(book, [], T0 + WAIT + INTERVAL)
    assert [a.rule for a in done.resolved] == [Rule.STATION_DOWN]


def test_silence_holds_notices_until_it_ends() -> None:
    book = new_book()
    c = cond(Rule.DISPENSER_COLD)
    quiet = frozenset({"s1"})
    step(book, [c], T0, silenced=quiet)
    assert step(book, [c], T0 + 60_000, silenced=quiet) == []
    assert book.alerts[c.key].state is AlertState.FIRING  # it fires; it is just not told
    step(book, [c], T0 + 61_000)  # the silence is over
    [notice] = step(book, [c], T0 + 61_000 + WAIT)
    assert [a.key for a in notice.firing] == [c.key]


def test_resolved_during_silence_sends_nothing() -> None:
    book = new_book()
    c = cond(Rule.DISPENSER_COLD)
    quiet = frozenset({"s1"})
    step(book, [c], T0, silenced=quiet)
    assert step(book, [], T0 + 5_000, silenced=quiet) == []
    assert book.alerts == {}


def test_new_alert_in_a_notified_group_waits_group_interval() -> None:
    book = new_book()
    a, b = cond(Rule.DEVICE_FAULT, device="d1"), cond(Rule.DEVICE_FAULT, device="d2")
    step(book, [a], T0)
    step(book, [a], T0 + WAIT)
    step(book, [a, b], T0 + 2_000)
    assert step(book, [a, b], T0 + WAIT + INTERVAL - 1) == []
    [notice] = step(book, [a, b], T0 + WAIT + INTERVAL)
    assert {x.device for x in notice.firing} == {"d1", "d2"}


def test_a_flap_inside_the_group_interval_is_not_a_resolution_and_a_new_alert() -> None:
    book = new_book()
    c = cond(Rule.AGENT_OFFLINE)
    step(book, [c], T0)
    [first] = step(book, [c], T0 + WAIT)
    assert first.firing
    step(book, [], T0 + 5_000)  # resolved, but its notice waits for the group interval
    step(book, [c], T0 + 6_000)  # and back before it went out
    [update] = step(book, [c], T0 + WAIT + INTERVAL)
    assert [a.key for a in update.firing] == [c.key]
    assert update.resolved == ()
    assert book.alerts[c.key].fired_ms == T0  # the same alert, not a new one from 6 s
