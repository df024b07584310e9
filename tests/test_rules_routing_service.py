"""Routing by party on real parts: a webhook server per party, wills through a real Mosquitto.

Two enterprises and the district union each have their own local HTTP server
standing in for their chat group. An outage at an enterprise's station reaches
that enterprise and the union (criticals), never the other enterprise; the
union hears it again, once, as an escalation after the route's
`escalate_after`, with how long it has fired and who runs the station; an
alert resolved before that is never escalated; a silenced station is heard
nowhere; and a restart in the middle keeps what each route was told, so the
resolution reaches each of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from app.localservers import MosquittoServer
from rules.outage.alerts import AlertState
from rules.outage.config import RulesConfig, parse_rules_config
from rules.outage.service import RulesService
from tests.helpers import MqttSpy, wait_for
from tests.rules_peers import Hook, HookServer
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration

ESCALATE_S = 4.0


def district(uid: str, **operators: str) -> Registry:
    """Stations of an agent and a door counter that report hourly: only statuses move them
    (`a1="ent-b"`: another operator for a station)."""

    def station(name: str, operator: str) -> dict[str, Any]:
        sid = f"{name}-{uid}"
        return {"name": f"驿站 {name}", "model": "enterprise_incubated", "operator": operator,
                "devices": {f"{sid}-gw": {"kind": "gateway", "interval": "1h"},
                            f"{sid}-door": {"kind": "door_counter", "interval": "1h"}}}  # fmt: skip

    return parse_registry({
        "version": 1,
        "parties": {"union": {"name": "达川区总工会", "type": "union"},
                    "ent-a": {"name": "甲骑手公司", "type": "enterprise"},
                    "ent-b": {"name": "乙物流公司", "type": "enterprise"}},
        "stations": {f"{n}-{uid}": station(n, operators.get(n, op)) for n, op in
                     (("a1", "ent-a"), ("a2", "ent-a"), ("a3", "ent-a"), ("b1", "ent-b"))},
    })  # fmt: skip


def config(
    ent_a: HookServer, ent_b: HookServer, union: HookServer, escalate_s: float = ESCALATE_S
) -> RulesConfig:
    return parse_rules_config({
        "language": "zh",
        "thresholds": {"reconnect_grace": "1s"},
        "timing": {"group_wait": "0.5s", "group_interval": "1s", "scan_every": "0.2s"},
        "channels": [
            {"type": "webhook", "name": "ent-a", "url": ent_a.url("/hook")},
            {"type": "webhook", "name": "ent-b", "url": ent_b.url("/hook")},
            {"type": "webhook", "name": "union", "url": union.url("/hook")},
            {"type": "log"},
        ],
        "route": {"channels": ["log"], "routes": [
            {"match": {"severity": "critical"}, "channels": ["union"], "continue": True},
            {"match": {"operator": "ent-a"}, "channels": ["ent-a"],
             "escalate_after": f"{escalate_s}s", "escalate_to": ["union"]},
            {"match": {"operator": "ent-b"}, "channels": ["ent-b"]},
        ]},
    }, "rules.yaml")  # fmt: skip


def notices(hooks: HookServer) -> list[dict[str, Any]]:
    return [n for h in hooks.on("/hook") for n in h.body["notices"]]


def firing(hooks: HookServer, station: str, *, escalation: bool | None = None) -> list[Any]:
    return [n for n in notices(hooks) if n["station"] == station and n["firing"]
            and (escalation is None or n["escalation"] is escalation)]  # fmt: skip


def resolved(hooks: HookServer, station: str) -> list[Any]:
    return [n for n in notices(hooks) if n["station"] == station and n["resolved"]]


def stations_heard(hooks: HookServer) -> set[str]:
    return {n["station"] for n in notices(hooks)}


def texts(hooks: HookServer) -> list[Hook]:
    return hooks.on("/hook")


def status(pub: MqttSpy, station: str, state: str) -> None:
    """The agent's retained status, as its will (offline) or its return (online) sets it."""
    payload = json.dumps({"v": 1, "ts": int(time.time() * 1000), "state": state, "agent": "t"})
    pub.client.publish(f"stations/{station}/{station}-gw/status", payload, qos=1,
                       retain=True).wait_for_publish(5)  # fmt: skip


def fired_ms(service: RulesService, station: str) -> int | None:
    with service._lock:
        alert = service.book.alerts.get(f"station_down:{station}:*")
        return None if alert is None or alert.state is not AlertState.FIRING else alert.fired_ms


def check_escalation(union: HookServer, station: str) -> None:
    """The escalation says so, how long the alert has fired and who runs the station."""
    [escalated] = firing(union, station, escalation=True)
    assert escalated["route"] == "root/operator=ent-a!escalation"
    [hook] = [h for h in texts(union) if any(n["escalation"] for n in h.body["notices"])]
    assert hook.body["title"] == "[升级] 驿站 a1"
    assert "运营方：甲骑手公司" in hook.body["text"]
    assert "已告警 0 分钟" in hook.body["text"]  # 4 s: under a minute


def test_each_party_hears_its_own_stations_and_the_union_escalations_once(
    tmp_path: Path, mqtt_settings: MqttSettings, uid: str
) -> None:
    reg = district(uid)
    a1, a2, a3, b1 = (f"{n}-{uid}" for n in ("a1", "a2", "a3", "b1"))
    state = tmp_path / "state.db"
    with HookServer() as ent_a, HookServer() as ent_b, HookServer() as union:
        cfg = config(ent_a, ent_b, union)

        def start() -> RulesService:
            return RulesService(mqtt_settings, reg, cfg, state, client_id=f"rules-{uid}",
                                topic_filter="stations/+/+/+")  # fmt: skip

        service = start()
        service.state.add_silence(a2, 0, int(time.time() * 1000) + 3_600_000, "maintenance")
        with service, MqttSpy(mqtt_settings, f"pub-{uid}", []) as pub:
            assert service.wait_subscribed()
            wait_for(lambda: service.giving_verdicts, "the grace period over")
            for station in (a1, a2, b1):
                status(pub, station, "offline")
            wait_for(lambda: firing(ent_a, a1) and firing(ent_b, b1), "each enterprise told", 15)
            wait_for(lambda: firing(union, a1) and firing(union, b1), "the union told (critical)")
            # An outage at a3 that ends before its escalation time.
            status(pub, a3, "offline")
            wait_for(lambda: firing(ent_a, a3), "a3's outage told to its enterprise", 15)
            status(pub, a3, "online")
            wait_for(lambda: resolved(ent_a, a3), "a3's return told to its enterprise", 15)
            a3_fired = service.book.alerts.get(f"station_down:{a3}:*")
            assert a3_fired is None  # resolved and told everywhere it was told

            # a1's escalation, once, after its time, with how long and who runs it.
            wait_for(lambda: firing(union, a1, escalation=True), "a1 escalated", 20)
            fired = fired_ms(service, a1)
            assert fired is not None
            check_escalation(union, a1)
            # Long enough for a3's and b1's escalation time, and many passes, to go by.
            passes = service.passes
            wait_for(lambda: time.time() * 1000 > fired + 2 * ESCALATE_S * 1000
                     and service.passes > passes + 10, "passes past every escalation time",
                     30)  # fmt: skip
            assert len(firing(union, a1, escalation=True)) == 1
            assert firing(union, a3, escalation=True) == []  # resolved before it
            assert firing(union, b1, escalation=True) == []  # ent-b's route has none
        # Restart: what each route was told survives.
        service = start()
        with service, MqttSpy(mqtt_settings, f"pub2-{uid}", []) as pub:
            assert service.wait_subscribed()
            wait_for(lambda: service.giving_verdicts and service.passes > 3, "verdicts again")
            assert fired_ms(service, a1) == fired  # the same alert, not raised anew
            status(pub, a1, "online")
            wait_for(lambda: resolved(ent_a, a1), "a1's return told to its enterprise", 15)
            # The union hears it on both of its routes (critical and escalation); one
            # message when both are due together, never the firing again.
            wait_for(lambda: resolved(union, a1), "a1's return told to the union", 15)
            wait_for(lambda: sum(w for w, _ in service.state.notice_counts().values()) == 0,
                     "every notice delivered")  # fmt: skip
            a2_alert = service.book.alerts[f"station_down:{a2}:*"]
            assert a2_alert.state is AlertState.FIRING
            assert a2_alert.silenced
    # Each enterprise heard only its own stations; nobody heard the silenced one.
    assert stations_heard(ent_a) == {a1, a3}
    assert stations_heard(ent_b) == {b1}
    assert stations_heard(union) == {a1, a3, b1}  # criticals at once
    assert len(firing(ent_a, a1)) == 1  # not again after the restart
    assert len(firing(union, a1, escalation=False)) == 1
    assert resolved(ent_b, a1) == []


def test_a_station_handed_to_another_operator_while_down_is_told_to_both(
    tmp_path: Path, mqtt_settings: MqttSettings, uid: str
) -> None:
    """The registry changes while a1 is down: after the restart its new operator hears the
    open alert, and the old one, who heard it fire, hears it resolve."""
    a1 = f"a1-{uid}"
    state = tmp_path / "state.db"
    with HookServer() as ent_a, HookServer() as ent_b, HookServer() as union:
        cfg = config(ent_a, ent_b, union)

        def start(reg: Registry) -> RulesService:
            return RulesService(mqtt_settings, reg, cfg, state, client_id=f"rules-{uid}",
                                topic_filter="stations/+/+/+")  # fmt: skip

        with start(district(uid)) as service, MqttSpy(mqtt_settings, f"pub-{uid}", []) as pub:
            assert service.wait_subscribed()
            wait_for(lambda: service.giving_verdicts, "the grace period over")
            status(pub, a1, "offline")
            wait_for(lambda: firing(ent_a, a1), "a1's outage told to ent-a", 15)
        handed = district(uid, a1="ent-b")
        with start(handed) as service, MqttSpy(mqtt_settings, f"pub2-{uid}", []) as pub:
            assert service.wait_subscribed()
            wait_for(lambda: firing(ent_b, a1), "a1's open outage told to ent-b", 15)
            status(pub, a1, "online")
            wait_for(lambda: resolved(ent_b, a1), "a1's return told to ent-b", 15)
            wait_for(lambda: resolved(ent_a, a1), "a1's return told to ent-a, who heard it", 15)
    assert len(firing(ent_a, a1)) == 1  # the old operator is not reminded
    assert len(firing(ent_b, a1)) == 1


def test_no_escalation_while_the_broker_is_gone_and_it_follows_once_it_is_back(
    tmp_path: Path, own_mosquitto: MosquittoServer, uid: str
) -> None:
    """No data, no verdict: "still down after N s" is not said on a stream that is not
    proven (the station may have come back unseen); it is said once the broker is back and
    the station still down."""
    a1 = f"a1-{uid}"
    settings = MqttSettings.from_url(own_mosquitto.url)
    escalate_s = 8.0
    with HookServer() as ent_a, HookServer() as ent_b, HookServer() as union:
        service = RulesService(settings, district(uid), config(ent_a, ent_b, union, escalate_s),
                               tmp_path / "state.db", client_id=f"rules-{uid}",
                               topic_filter="stations/+/+/+")  # fmt: skip
        with service:
            with MqttSpy(settings, f"pub-{uid}", []) as pub:
                assert service.wait_subscribed()
                wait_for(lambda: service.giving_verdicts, "the grace period over")
                status(pub, a1, "offline")
                wait_for(lambda: firing(ent_a, a1), "a1's outage told to ent-a", 15)
            fired = fired_ms(service, a1)
            assert fired is not None
            own_mosquitto.stop()
            passes = service.passes
            wait_for(lambda: time.time() * 1000 > fired + (escalate_s + 2) * 1000
                     and service.passes > passes + 10, "blind past the escalation time",
                     30)  # fmt: skip
            assert not service.stream_proven
            assert firing(union, a1, escalation=True) == []
            own_mosquitto.start()
            wait_for(lambda: firing(union, a1, escalation=True), "escalated once back", 30)
            assert service.stream_proven
            assert fired_ms(service, a1) == fired  # still the same alert
    assert len(firing(union, a1, escalation=True)) == 1
