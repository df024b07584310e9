"""Notices between the lifecycle and a channel: stored, routed, merged.

A notice is written to the state database for every channel that should
carry it (`route`), in the same transaction that marks its alerts notified,
so a crash or a restart loses none. It is stored as JSON (`encode` /
`decode`) with a snapshot of its alerts. When several notices for one
station wait on a channel (the channel was failing, or rate-limited), they
go out as one (`merge`): a resolution that follows an undelivered firing is
carried in the same message as that firing, so no resolution ever arrives
before its firing, and nothing said is lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from rules.outage.alerts import Alert, AlertState, Notice
from rules.outage.detect import Rule
from rules.outage.routing import ROOT

__all__ = ["decode", "encode", "merge", "route"]


def _alert(a: Alert) -> dict[str, Any]:
    return {
        "key": a.key,
        "rule": a.rule.value,
        "station": a.station,
        "device": a.device,
        "since_ms": a.since_ms,
        "state": a.state.value,
        "detail": a.detail,
        "fired_ms": a.fired_ms,
        "resolved_ms": a.resolved_ms,
    }


def _unalert(d: dict[str, Any]) -> Alert:
    return Alert(
        key=d["key"],
        rule=Rule(d["rule"]),
        station=d["station"],
        device=d["device"],
        since_ms=d["since_ms"],
        state=AlertState(d["state"]),
        detail=d["detail"],
        fired_ms=d["fired_ms"],
        resolved_ms=d["resolved_ms"],
    )


def encode(notice: Notice) -> str:
    """The notice as it is now: the alerts are snapshots, later changes do not leak in."""
    return json.dumps(
        {
            "v": 1,
            "station": notice.station,
            "repeat": notice.repeat,
            "target": notice.target,
            "escalation": notice.escalation,
            "at_ms": notice.at_ms,
            "firing": [_alert(a) for a in notice.firing],
            "resolved": [_alert(a) for a in notice.resolved],
        },
        ensure_ascii=False,
    )


def decode(text: str) -> Notice:
    d = json.loads(text)
    return Notice(
        d["station"],
        tuple(_unalert(a) for a in d["firing"]),
        tuple(_unalert(a) for a in d["resolved"]),
        bool(d["repeat"]),
        d.get("target", ROOT),  # notices stored before routing have none
        bool(d.get("escalation", False)),
        d.get("at_ms"),
    )


def merge(notices: Sequence[Notice]) -> Notice:
    """Several waiting notices of one station, oldest first, as one message that says all.

    An alert is identified by its key and the start of its episode. A later
    firing of the same episode replaces an earlier one (a repeat); a
    resolution is kept together with the undelivered firing before it.
    """
    if len(notices) == 1:
        return notices[0]
    firing: dict[tuple[str, int], Alert] = {}
    resolved: dict[tuple[str, int], Alert] = {}
    for notice in notices:
        for a in notice.firing:
            firing[(a.key, a.since_ms)] = a
        for a in notice.resolved:
            resolved[(a.key, a.since_ms)] = a
    return Notice(
        notices[0].station,
        tuple(firing.values()),
        tuple(resolved.values()),
        repeat=all(n.repeat for n in notices),
        target=notices[-1].target,
        escalation=any(n.escalation for n in notices),
        at_ms=max((n.at_ms for n in notices if n.at_ms is not None), default=None),
    )


def _keep(alerts: Iterable[Alert], channel: str, *, needs_broker: bool) -> tuple[Alert, ...]:
    return tuple(
        a
        for a in alerts
        if not (needs_broker and a.rule is Rule.MONITORING_LOST)
        and not (a.rule is Rule.CHANNEL_FAILING and a.device == channel)
    )


def route(notice: Notice, channel: str, *, needs_broker: bool) -> Notice | None:
    """What of the notice goes to this channel, or None.

    `monitoring_lost` is not sent on a channel that needs the broker it is
    about, and a channel is not told that it itself is failing.
    """
    firing = _keep(notice.firing, channel, needs_broker=needs_broker)
    resolved = _keep(notice.resolved, channel, needs_broker=needs_broker)
    if not firing and not resolved:
        return None
    if len(firing) == len(notice.firing) and len(resolved) == len(notice.resolved):
        return notice
    return replace(notice, firing=firing, resolved=resolved)
