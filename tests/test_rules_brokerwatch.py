"""The rules' view of the broker, worked through by hand (`rules.outage.brokerwatch`).

Times in seconds from the start, the grace 25 s, `monitoring_lost` after 18 s: a
broker restart, a crash loop, a connection that delivers nothing.
"""

from __future__ import annotations

from rules.outage.brokerwatch import BrokerWatch, Cause

S = 1000  # ms


def _watch() -> BrokerWatch:
    return BrokerWatch(0, will_grace_ms=25 * S, base_grace_ms=25 * S, lost_after_ms=18 * S,
                       device_grace_ms={"slow": 40 * S})  # fmt: skip


def _up(w: BrokerWatch, at: int) -> None:
    """Connected, subscribed, and the probe back: the stream proven at `at` s."""
    w.on_connected(at * S)
    w.subscribed = True
    w.probe_returned(w.next_probe(at * S), at * S)


def _tick(w: BrokerWatch, at: int) -> None:
    """A pass at `at` s, its probe back at once (as every second while connected)."""
    w.probe_returned(w.next_probe(at * S), at * S)
    w.update(at * S)


def test_a_restart_gives_one_grace_and_no_monitoring_lost() -> None:
    w = _watch()
    _up(w, 1)
    assert not w.verdicts(25 * S)
    assert w.verdicts(26 * S)
    for t in range(2, 41):
        _tick(w, t)  # verdicts for 14 s: the start's blind spell is over
    assert not w.in_spell
    w.on_disconnected(100 * S)
    _up(w, 101)
    for t in range(101, 126):
        _tick(w, t)
        assert not w.monitoring_lost(t * S), t
    assert w.verdicts(126 * S)
    assert not w.absence_allowed("slow", 126 * S), "the slow device's own grace: 40 s"
    assert w.absence_allowed("slow", 141 * S)
    assert w.release_due(100 * S, 125 * S), "a will held at 100 s counts at 125 s"


def test_a_crash_loop_is_monitoring_lost_and_its_wills_still_count() -> None:
    w = _watch()
    _up(w, 1)
    for t in range(2, 41):
        _tick(w, t)
    assert not w.in_spell
    w.on_disconnected(100 * S)  # a will comes with it, and is held
    _up(w, 101)  # grace until 126 s
    w.on_disconnected(114 * S)  # again, in the middle of the grace
    _up(w, 115)
    # Extended by the second outage's 1 s, not started again (that would be 140 s).
    assert not w.verdicts(126 * S)
    assert w.verdicts(127 * S)
    _tick(w, 118)
    assert not w.monitoring_lost(118 * S), "two restarts (an operator's) are no crash loop"
    assert not w.release_due(100 * S, 124 * S)
    assert w.release_due(100 * S, 125 * S), "the held will counts 25 s after it came"
    w.on_disconnected(126 * S)  # a third time: a crash loop
    assert w.monitoring_lost(126 * S), "blind since 100 s with three losses, each short"


def test_connected_but_no_probe_back_is_not_proven() -> None:
    w = _watch()
    w.on_connected(1 * S)
    w.subscribed = True
    w.next_probe(1 * S)  # never comes back: an account that may not read
    for t in range(1, 40):
        w.update(t * S)
        assert not w.verdicts(t * S)
    assert w.cause == Cause.NO_PROBE
    assert w.monitoring_lost(39 * S)
