"""The routing tree: Alertmanager's matching, inheritance, escalation on an explicit clock."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rules.outage.alerts import AlertBook, AlertState, Notice
from rules.outage.config import RulesConfig, RulesConfigError, parse_rules_config
from rules.outage.detect import Condition, Rule
from rules.outage.routecheck import route_problems
from rules.outage.routing import Routing, Timers
from rules.outage.statedb import RulesState
from waystation.registry import Registry, parse_registry

T0 = 1_800_000_000_000
DEFAULT = Timers(1_000, 30_000, 4 * 3_600_000)


def district(**operators: str) -> Registry:
    """Two enterprises' stations and a community's, under one district union (`a1="ent-b"`:
    another operator for a station)."""

    def station(operator: str, model: str = "enterprise_incubated") -> dict[str, Any]:
        return {"name": f"站 {operator}", "model": model, "operator": operator, "devices": {}}

    stations = {"a1": station("ent-a"), "a2": station("ent-a"), "b1": station("ent-b"),
                "c1": station("centre", "community_integrated")}  # fmt: skip
    for sid, operator in operators.items():
        stations[sid]["operator"] = operator
    for sid, spec in stations.items():
        spec["devices"] = {f"{sid}-gw": {"kind": "gateway"},
                           f"{sid}-disp": {"kind": "water_dispenser"},
                           f"{sid}-meter": {"kind": "meter", "utility": "electricity"}}  # fmt: skip
    return parse_registry({
        "version": 1,
        "parties": {"union": {"name": "达川区总工会", "type": "union"},
                    "ent-a": {"name": "甲公司", "type": "enterprise"},
                    "ent-b": {"name": "乙公司", "type": "enterprise"},
                    "centre": {"name": "社区中心", "type": "community"}},
        "stations": stations,
    })  # fmt: skip


CHANNELS = [
    {"type": "log"},
    {"type": "webhook", "name": "ent-a", "url": "http://127.0.0.1:1/a"},
    {"type": "webhook", "name": "ent-b", "url": "http://127.0.0.1:1/b"},
    {"type": "webhook", "name": "union", "url": "http://127.0.0.1:1/u"},
]


def config(route: dict[str, Any] | None, **extra: Any) -> RulesConfig:
    data: dict[str, Any] = {"channels": CHANNELS, **extra}
    if route is not None:
        data["route"] = route
    return parse_rules_config(data, "rules.yaml")


DISTRICT_ROUTE: dict[str, Any] = {
    "channels": ["log"],
    "routes": [
        {"match": {"severity": "critical"}, "channels": ["union"], "continue": True},
        {"match": {"operator": "ent-a"}, "channels": ["ent-a"], "group_wait": "10s",
         "escalate_after": "2h", "escalate_to": ["union"],
         "routes": [{"matchers": ["kind = meter"], "channels": ["ent-a", "log"]}]},
        {"match": {"operator": ["ent-b", "centre"]}, "channels": ["ent-b"]},
    ],
}  # fmt: skip


def routing(
    route: dict[str, Any] | None = DISTRICT_ROUTE, registry: Registry | None = None
) -> Routing:
    cfg = config(route)
    reg = registry or district()
    return Routing.build(reg, cfg.route, [c.label for c in cfg.channels], DEFAULT)


def channels(r: Routing, station: str, rule: Rule, device: str | None) -> list[tuple[str, ...]]:
    return [t.channels for t in r.targets(station, rule.value, device)]


def test_without_a_route_every_channel_gets_every_alert() -> None:
    r = routing(None)
    everything = ("log", "ent-a", "ent-b", "union")
    assert channels(r, "a1", Rule.DEVICE_FAULT, "a1-disp") == [everything]
    assert channels(r, "_service", Rule.MONITORING_LOST, None) == [everything]
    [target] = r.targets("b1", Rule.STATION_DOWN.value, None)
    assert target.timers == DEFAULT


def test_deepest_match_wins_and_continue_reaches_the_next_sibling() -> None:
    r = routing()
    # A critical at ent-a's station: the union (continue) and ent-a, with ent-a's escalation.
    assert channels(r, "a1", Rule.STATION_DOWN, None) == [("union",), ("ent-a",), ("union",)]
    # A warning: ent-a only (and its escalation), not the union at once.
    assert channels(r, "a2", Rule.DEVICE_FAULT, "a2-disp") == [("ent-a",), ("union",)]
    # The meter's child route: its own channels, the escalation inherited.
    assert channels(r, "a1", Rule.METER_STUCK, "a1-meter") == [("ent-a", "log"), ("union",)]
    # A list matches any of its values.
    assert channels(r, "c1", Rule.DEVICE_FAULT, "c1-disp") == [("ent-b",)]
    assert channels(r, "b1", Rule.DEVICE_FAULT, "b1-disp") == [("ent-b",)]


def test_an_alert_no_child_takes_goes_to_the_root_and_service_alerts_only_there() -> None:
    r = routing({"channels": ["log"], "routes": [
        {"match": {"operator": "ent-a"}, "channels": ["ent-a"]}]})  # fmt: skip
    assert channels(r, "b1", Rule.DEVICE_FAULT, "b1-disp") == [("log",)]
    assert channels(r, "_service", Rule.CHANNEL_FAILING, "ent-a") == [("log",)]


def test_timers_are_inherited_and_overridden() -> None:
    r = routing()
    crit, ent_a, escalation = r.targets("a1", Rule.STATION_DOWN.value, None)
    assert crit.timers == DEFAULT
    assert ent_a.timers == Timers(10_000, DEFAULT.interval_ms, DEFAULT.repeat_ms)
    assert escalation.escalate_after_ms == 2 * 3_600_000
    assert escalation.timers.wait_ms == 0
    [meter, _] = r.targets("a1", Rule.METER_STUCK.value, "a1-meter")
    assert meter.timers == ent_a.timers  # the child inherits its parent's group_wait


@pytest.mark.parametrize(
    ("matcher", "station", "device", "hit"),
    [
        ("kind != meter", "a1", None, True),  # a station's own alert has no kind: ""
        ("kind != meter", "a1", "a1-meter", False),
        ('station =~ "a.*"', "a1", None, True),
        ("station =~ a", "a1", None, False),  # anchored at both ends, as in Alertmanager
        ("station !~ a.", "a1", None, False),
        ("model = enterprise_incubated", "b1", None, True),
        ("union = union", "c1", None, True),  # the registry's only union
        ('device = ""', "c1", None, True),
    ],
)
def test_matchers(matcher: str, station: str, device: str | None, hit: bool) -> None:
    r = routing({"channels": ["log"], "routes": [{"matchers": [matcher], "channels": ["ent-a"]}]})
    want = [("ent-a",)] if hit else [("log",)]
    assert channels(r, station, Rule.DEVICE_SILENT, device) == want


def codes(exc: pytest.ExceptionInfo[RulesConfigError]) -> list[str]:
    return [p.code for p in exc.value.problems]


def test_a_repeated_channel_type_needs_a_name() -> None:
    with pytest.raises(RulesConfigError) as exc:
        parse_rules_config({"channels": [{"type": "log"}, {"type": "log"}]}, "rules.yaml")
    assert codes(exc) == ["duplicate_channel"]
    assert "channel 2" in str(exc.value)
    assert "the first is channel 1" in str(exc.value)
    with pytest.raises(RulesConfigError) as exc:
        parse_rules_config({"channels": [{"type": "log", "name": "x"},
                                         {"type": "mqtt", "name": "x"}]}, "r.yaml")  # fmt: skip
    assert codes(exc) == ["duplicate_channel"]
    # One of a type may keep its type as its name.
    ok = parse_rules_config({"channels": [{"type": "log"}, {"type": "log", "name": "b"}]}, "r")
    assert [c.label for c in ok.channels] == ["log", "b"]


def test_route_mistakes_are_errors_with_their_place() -> None:
    with pytest.raises(RulesConfigError) as exc:
        config({
            "channels": ["log"],
            "routes": [
                {"match": {"operater": "ent-a"}, "channels": ["ent-a"]},
                {"matchers": ["severity critical"], "channels": ["union"]},
                {"matchers": ["station =~ (a"], "channels": ["log"]},
                # A Chinese input method's quotes and operators: not part of the value.
                {"matchers": ["station =~ “a.*”", "operator ！＝ ent-a"], "channels": ["log"]},
                {"name": "甲公司", "match": {"operator": "ent-a"}, "channels": ["log"]},
            ],
        })  # fmt: skip
    assert sorted((p.where, p.code) for p in exc.value.problems) == [
        ("route.routes.0.match.operater", "unknown_label"),
        ("route.routes.1.matchers.0", "bad_matcher"),
        ("route.routes.2.matchers.0", "bad_regex"),
        ("route.routes.3.matchers.0", "wide_punctuation"),
        ("route.routes.3.matchers.1", "wide_punctuation"),
        ("route.routes.4.name", "bad_route_name"),
    ]
    assert "route names are ASCII letters, digits, '_', '.', ':' and '-'" in str(exc.value)
    assert "has full-width punctuation (“ ”)" in str(exc.value)
    assert "里有全角标点（！ ＝）" in str(exc.value)
    with pytest.raises(RulesConfigError) as exc:
        config({"match": {"station": "a1"},
                "routes": [{"escalate_after": "2h", "channels": ["log"]}]})  # fmt: skip
    assert sorted(codes(exc)) == ["escalation_incomplete"]
    with pytest.raises(RulesConfigError) as exc:
        config({"match": {"station": "a1"}, "continue": True})
    assert sorted(codes(exc)) == ["root_channels", "root_continue", "root_matchers"]
    # A route that names no channel would drop its alerts without a word.
    with pytest.raises(RulesConfigError) as exc:
        config({"channels": ["log"], "routes": [
            {"match": {"severity": "critical"}, "channels": []},
            {"escalate_after": "1h", "escalate_to": []}]})  # fmt: skip
    assert sorted((p.where, p.code) for p in exc.value.problems) == [
        ("route.routes.0.channels", "no_channel"),
        ("route.routes.1.escalate_to", "no_channel"),
    ]
    assert "the alerts this route takes would go nowhere" in str(exc.value)
    assert "这条路由的升级通知哪里都不会发" in str(exc.value)
    with pytest.raises(RulesConfigError) as exc:
        config({"channels": ["log"], "routes": [{"channels": ["unoin"]}]})
    assert codes(exc) == ["unknown_channel"]
    assert "did you mean 'union'" in str(exc.value)
    assert "是不是 'union'" in str(exc.value)


# --- escalation and per-route groups, on an explicit clock ------------------------------


def book_for(route: dict[str, Any]) -> AlertBook:
    return AlertBook(router=routing(route))


ESCALATING: dict[str, Any] = {
    "channels": ["log"],
    "routes": [{"match": {"operator": "ent-a"}, "channels": ["ent-a"],
                "escalate_after": "2h", "escalate_to": ["union"]}],
}  # fmt: skip
HOUR = 3_600_000


def step(book: AlertBook, conds: list[Condition], now: int, silenced: str = "") -> list[Notice]:
    book.update({c.key: c for c in conds}, now, {}, lambda s: s == silenced)
    return book.due(now)


def where(notices: list[Notice]) -> list[tuple[str, bool, list[str], list[str]]]:
    return [(n.target, n.escalation, [a.key for a in n.still_firing],
             [a.key for a in n.resolved]) for n in notices]  # fmt: skip


def test_escalation_fires_once_after_its_time_then_resolves_there_too() -> None:
    book = book_for(ESCALATING)
    fault = Condition(Rule.DEVICE_FAULT, "a1", "a1-disp", T0, "E3")
    k = fault.key
    step(book, [fault], T0)
    assert where(step(book, [fault], T0 + 1_000)) == [("root/operator=ent-a", False, [k], [])]
    assert step(book, [fault], T0 + 2 * HOUR - 1) == []
    assert book.next_due_ms() == T0 + 2 * HOUR  # the pass is woken for it
    [escalated] = step(book, [fault], T0 + 2 * HOUR)
    assert where([escalated]) == [("root/operator=ent-a!escalation", True, [k], [])]
    assert escalated.at_ms == T0 + 2 * HOUR
    # Once: the repeat interval reminds the operator's route, never the escalation.
    later = step(book, [fault], T0 + 1_000 + 4 * HOUR)
    assert where(later) == [("root/operator=ent-a", False, [k], [])]
    assert all(not n.escalation for t in range(3, 30) for n in step(book, [fault], T0 + t * HOUR))
    # Resolved: both routes that were told hear it, once each.
    done = step(book, [], T0 + 30 * HOUR) + step(book, [], T0 + 30 * HOUR + 30_000)
    assert sorted(where(done)) == [("root/operator=ent-a", False, [], [k]),
                                   ("root/operator=ent-a!escalation", True, [], [k])]  # fmt: skip
    assert book.alerts == {}
    assert book.groups == {}


def test_no_escalation_for_an_alert_resolved_or_silenced_before_it() -> None:
    book = book_for(ESCALATING)
    fault = Condition(Rule.DEVICE_FAULT, "a1", "a1-disp", T0)
    step(book, [fault], T0)
    step(book, [fault], T0 + 1_000)
    step(book, [], T0 + 2 * HOUR - 1)  # resolved a moment before
    resolved = step(book, [], T0 + 2 * HOUR + 60_000)
    assert all(not n.escalation for n in resolved)
    assert book.alerts == {}
    # Silenced across its escalation time: held; told when the silence ends, still firing.
    other = Condition(Rule.DEVICE_FAULT, "a2", "a2-disp", T0)
    step(book, [other], T0)
    step(book, [other], T0 + 1_000)
    assert step(book, [other], T0 + 3 * HOUR, silenced="a2") == []
    assert step(book, [other], T0 + 4 * HOUR, silenced="a2") == []
    late = step(book, [other], T0 + 5 * HOUR)  # the operator is told again, as after any silence
    assert [n.escalation for n in late] == [False, True]


def test_an_alert_reaches_only_its_operators_route() -> None:
    book = book_for(ESCALATING)
    a = Condition(Rule.DEVICE_FAULT, "a1", "a1-disp", T0)
    b = Condition(Rule.DEVICE_FAULT, "b1", "b1-disp", T0)
    step(book, [a, b], T0)
    sent = step(book, [a, b], T0 + 1_000)
    assert sorted((n.station, n.target) for n in sent) == [
        ("a1", "root/operator=ent-a"), ("b1", "root")]  # fmt: skip


def test_a_state_file_from_before_routing_keeps_what_was_told(tmp_path: Path) -> None:
    """Its groups become the root's; a notified alert was told on every route it reaches."""
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE alerts (
            key TEXT PRIMARY KEY, rule TEXT NOT NULL, station TEXT NOT NULL, device TEXT,
            since_ms INTEGER NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL,
            fired_ms INTEGER, resolved_ms INTEGER,
            notified INTEGER NOT NULL, inhibited INTEGER NOT NULL, silenced INTEGER NOT NULL);
        CREATE TABLE groups (station TEXT PRIMARY KEY, changed_ms INTEGER, last_sent_ms INTEGER);
    """)
    db.execute("INSERT INTO alerts VALUES ('device_fault:a1:a1-disp', 'device_fault', 'a1', "
               "'a1-disp', ?, 'firing', '', ?, NULL, 1, 0, 0)", (T0, T0))  # fmt: skip
    db.execute("INSERT INTO groups VALUES ('a1', NULL, ?)", (T0,))
    db.commit()
    db.close()
    state = RulesState(path)
    book = state.load_book()
    book.adopt(routing(None), T0 + 1_000)
    [alert] = book.alerts.values()
    assert alert.notified_on == {"root"}
    assert book.groups[("root", "a1")].last_sent_ms == T0
    state.save(book)
    state.close()
    again = RulesState(path).load_book()
    assert again.alerts[alert.key].notified_on == {"root"}
    # Resolved now: the resolution goes to the root, as the firing did.
    book.update({}, T0 + 60_000, {}, lambda _: False)
    [done] = book.due(T0 + 60_000)
    assert (done.target, [a.key for a in done.resolved]) == ("root", [alert.key])


BY_OPERATOR: dict[str, Any] = {
    "channels": ["log"],
    "routes": [{"match": {"operator": "ent-a"}, "channels": ["ent-a"],
                "escalate_after": "2h", "escalate_to": ["union"]},
               {"match": {"operator": "ent-b"}, "channels": ["ent-b"]}],
}  # fmt: skip


def test_a_station_handed_to_another_operator_while_firing_tells_both() -> None:
    """The new operator hears the open alert; whoever heard it fire hears it resolve."""
    book = book_for(BY_OPERATOR)
    fault = Condition(Rule.DEVICE_FAULT, "a1", "a1-disp", T0)
    step(book, [fault], T0)
    step(book, [fault], T0 + 1_000)
    [escalated] = step(book, [fault], T0 + 2 * HOUR)
    assert escalated.escalation
    # The registry now says ent-b runs a1 (the service restarts with it).
    book.adopt(routing(BY_OPERATOR, district(a1="ent-b")), T0 + 3 * HOUR)
    assert step(book, [fault], T0 + 3 * HOUR) == []  # ent-b's group waits its group_wait
    told = step(book, [fault], T0 + 3 * HOUR + 1_000)
    assert where(told) == [("root/operator=ent-b", False, [fault.key], [])]
    # Reminders go to ent-b only: ent-a's repeat time passes without a word.
    assert step(book, [fault], T0 + 4 * HOUR + 1_000) == []
    reminder = step(book, [fault], T0 + 7 * HOUR + 1_000)
    assert where(reminder) == [("root/operator=ent-b", False, [fault.key], [])]
    done = step(book, [], T0 + 9 * HOUR) + step(book, [], T0 + 9 * HOUR + 30_000)
    assert sorted(where(done)) == [("root/operator=ent-a", False, [], [fault.key]),
                                   ("root/operator=ent-a!escalation", True, [], [fault.key]),
                                   ("root/operator=ent-b", False, [], [fault.key])]  # fmt: skip
    assert book.alerts == {}


def test_a_firing_alert_whose_route_was_removed_before_it_was_told_is_told() -> None:
    book = book_for(BY_OPERATOR)
    fault = Condition(Rule.DEVICE_FAULT, "a1", "a1-disp", T0)
    step(book, [fault], T0)  # fires; ent-a's group waits its group_wait
    # Restarted before it went out, with ent-a's route gone: the root takes a1 now.
    book.adopt(routing({"channels": ["log"], "routes": [BY_OPERATOR["routes"][1]]}), T0 + 500)
    told = step(book, [fault], T0 + 1_500)
    assert where(told) == [("root", False, [fault.key], [])]


def test_a_resolution_during_a_silence_is_told_when_the_silence_ends() -> None:
    """Told it fired, then silenced for maintenance, then back: every route that heard the
    firing (the escalation too) hears the resolution once the silence ends, not never."""
    book = book_for(ESCALATING)
    fault = Condition(Rule.DEVICE_FAULT, "a1", "a1-disp", T0)
    other = Condition(Rule.DEVICE_FAULT, "a1", "a1-meter", T0)
    step(book, [fault], T0)
    step(book, [fault], T0 + 1_000)
    step(book, [fault], T0 + 2 * HOUR)  # escalated
    assert step(book, [fault], T0 + 3 * HOUR, silenced="a1") == []
    assert step(book, [], T0 + 4 * HOUR, silenced="a1") == []  # back during the silence
    # Another alert of the station, while silenced: the held resolution stays held.
    assert step(book, [other], T0 + 4 * HOUR + 1_000, silenced="a1") == []
    assert step(book, [other], T0 + 4 * HOUR + 60_000, silenced="a1") == []
    assert book.alerts[fault.key].state is AlertState.RESOLVED
    # The silence is over (and `other` gone, never told).
    done = step(book, [], T0 + 5 * HOUR) + step(book, [], T0 + 5 * HOUR + 30_000)
    assert sorted(where(done)) == [("root/operator=ent-a", False, [], [fault.key]),
                                   ("root/operator=ent-a!escalation", True, [], [fault.key])]  # fmt: skip
    assert book.alerts == {}


INHERITED: dict[str, Any] = {"channels": ["log"], "routes": [{
    "match": {"operator": "ent-a"}, "escalate_after": "2h", "escalate_to": ["union"],
    "routes": [{"match": {"severity": "critical"}, "channels": ["ent-b"], "continue": True},
               {"channels": ["ent-a"]}]}]}  # fmt: skip


def test_an_escalation_inherited_by_two_routes_an_alert_reaches_is_sent_once() -> None:
    """ent-a's escalation is inherited by both of its children; a critical reaches both
    (`continue`): the union hears one escalation, not one per child."""
    book = book_for(INHERITED)
    down = Condition(Rule.STATION_DOWN, "a1", None, T0)
    step(book, [down], T0)
    first = step(book, [down], T0 + 1_000)
    assert sorted(n.target for n in first) == ["root/operator=ent-a/*",
                                               "root/operator=ent-a/severity=critical"]  # fmt: skip
    escalated = step(book, [down], T0 + 2 * HOUR)
    assert where(escalated) == [("root/operator=ent-a!escalation", True, [down.key], [])]
    done = step(book, [], T0 + 3 * HOUR) + step(book, [], T0 + 3 * HOUR + 30_000)
    assert sorted(n.target for n in done) == ["root/operator=ent-a!escalation",
                                              "root/operator=ent-a/*",
                                              "root/operator=ent-a/severity=critical"]  # fmt: skip


def test_escalation_waits_while_the_stream_is_not_proven() -> None:
    """The service passes `escalate=False` while blind: nothing is escalated, and the
    overdue escalation does not wake the pass loop over and over."""
    book = book_for(ESCALATING)
    fault = Condition(Rule.DEVICE_FAULT, "a1", "a1-disp", T0)
    step(book, [fault], T0)
    step(book, [fault], T0 + 1_000)
    book.update({fault.key: fault}, T0 + 3 * HOUR, {}, lambda _: False)
    assert book.due(T0 + 3 * HOUR, escalate=False) == []
    assert book.next_due_ms(escalate=False) == T0 + 1_000 + 4 * HOUR  # the reminder only
    assert book.next_due_ms() == T0 + 2 * HOUR  # overdue: now, once it may
    assert where(book.due(T0 + 3 * HOUR + 1)) == [
        ("root/operator=ent-a!escalation", True, [fault.key], [])
    ]


def test_an_escalation_told_under_a_childs_id_by_the_previous_version_is_not_repeated() -> None:
    """Before, each child had its own copy of an inherited escalation (`…/*!escalation`);
    a state file from then keeps what it told: no second escalation after the upgrade."""
    book = book_for(INHERITED)
    down = Condition(Rule.STATION_DOWN, "a1", None, T0)
    step(book, [down], T0)
    step(book, [down], T0 + 1_000)
    alert = book.alerts[down.key]
    alert.notified_on = {"root/operator=ent-a/*", "root/operator=ent-a/severity=critical",
                         "root/operator=ent-a/*!escalation"}  # fmt: skip
    book.adopt(routing(INHERITED), T0 + 2 * HOUR)
    assert "root/operator=ent-a!escalation" in alert.notified_on
    assert all(not n.escalation for n in step(book, [down], T0 + 3 * HOUR))
    done = step(book, [], T0 + 4 * HOUR) + step(book, [], T0 + 4 * HOUR + 30_000)
    assert "root/operator=ent-a!escalation" in [n.target for n in done]


def test_a_typo_in_a_regex_of_literals_is_found_like_one_in_match() -> None:
    """`operator =~ "ent-a|ent-c"`: ent-c's alerts would go elsewhere, unnoticed, since the
    route is still reached by ent-a's. A real pattern is left to the reachability check."""
    route = {"channels": ["log"], "routes": [
        {"matchers": ['operator =~ "ent-a|ent-bb"'], "channels": ["ent-a"]},
        {"matchers": ['station !~ "a1|b1|c9"'], "channels": ["ent-b"]},
        {"matchers": ['station =~ "c.*|b1"'], "channels": ["union"]}]}  # fmt: skip
    problems = route_problems(routing(route), district())
    assert [(path, p.code) for path, p in problems] == [
        (("route", "routes", 0, "matchers", 0), "unknown_value"),
        (("route", "routes", 1, "matchers", 0), "unknown_value"),
    ]
    assert "did you mean 'ent-b'?" in str(problems[0][1].fix)
    assert "there is no station 'c9'" in str(problems[1][1].what)


def test_a_restart_does_not_repeat_a_group_for_an_alert_inhibited_since_it_was_saved(
    tmp_path: Path,
) -> None:
    """An agent's alert fires, then its station's outage inhibits it: the state file must
    say so, or the restart takes it for an untold firing alert and repeats the station's
    notice (a kill -9 during an outage did, in test_rules_restart)."""
    state = RulesState(tmp_path / "state.db")
    book = book_for(ESCALATING)
    agent = Condition(Rule.AGENT_OFFLINE, "a1", "a1-gw", T0)
    down = Condition(Rule.STATION_DOWN, "a1", None, T0)
    inhibited = Condition(Rule.AGENT_OFFLINE, "a1", "a1-gw", T0, inhibited=True)
    step(book, [agent], T0)  # fires, not yet inhibited: saved so
    state.save(book, now_ms=T0)
    [told] = step(book, [down, inhibited], T0 + 1_000)
    assert [a.key for a in told.firing] == [down.key]
    state.save(book, now_ms=T0 + 1_000)
    state.close()
    again = RulesState(tmp_path / "state.db")
    book = again.load_book()
    book.adopt(routing(ESCALATING), T0 + 5_000)
    assert book.alerts[agent.key].inhibited
    assert step(book, [down, inhibited], T0 + 5_000) == []
    assert step(book, [down, inhibited], T0 + 60_000) == []
    again.close()
