"""The rules service on real parts: agents killed and restarted, real webhook and SMTP peers.

Agents are `waystation edge` processes killed with SIGKILL, so their wills come
from Mosquitto as after a power cut. Notifications land on a local HTTP server
(generic webhook, WeCom, DingTalk and Feishu robots, whose signatures are
checked here with the platforms' published algorithms), a local SMTP server
that requires STARTTLS, and the MQTT `alerts/` topics.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from edge.agent import EdgeAgent
from edge.config import AgentConfig
from rules.outage.alerts import AlertState
from rules.outage.config import RulesConfig, load_rules_config
from rules.outage.service import RulesService
from rules.outage.silences import add_silence
from tests.helpers import MqttSpy, wait_for
from tests.rules_helpers import (
    AGENT1,
    AGENT2,
    DINGTALK_SECRET,
    FEISHU_SECRET,
    SMTP_PASSWORD,
    agents,
    firing,
    repeats,
    reporting,
    resolved,
    rules_file,
    two_agent_station,
    will_only_stations,
)
from tests.rules_peers import Hook, HookServer, SmtpPeer
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path, hooks: HookServer, monkeypatch: pytest.MonkeyPatch) -> RulesConfig:
    monkeypatch.setenv("TEST_DINGTALK_SECRET", DINGTALK_SECRET)
    monkeypatch.setenv("TEST_FEISHU_SECRET", FEISHU_SECRET)
    return load_rules_config(rules_file(tmp_path, hooks))


def settled(service: RulesService) -> bool:
    """Every device reported since the service started, passes ran, nothing is alerting."""
    seen = all(d.last_seen_ms > service.started_ms for d in service.obs.devices.values())
    return seen and service.passes >= 2 and not service.book.alerts


def inhibited_firing(service: RulesService) -> set[str]:
    with service._lock:
        alerts = list(service.book.alerts.values())
    return {a.rule.value for a in alerts if a.inhibited and a.state is AlertState.FIRING}


def everything_said(service: RulesService) -> bool:
    """No change of a station's alerts waits to be notified, no notice waits for its channel."""
    with service._lock:
        changes = any(g.changed_ms is not None for g in service.book.groups.values())
    waiting = sum(w for w, _ in service.state.notice_counts().values())
    return not changes and waiting == 0


def about(hooks: HookServer, path: str, station: str) -> list[Hook]:
    """What reached `path` about `station` (not the service's own notices)."""
    return [h for h in hooks.on(path) if station in json.dumps(h.body, ensure_ascii=False)]


def notified(hooks: HookServer, path: str, stations: list[str]) -> bool:
    """Every one of `stations` in a notice on `path` (a count would take the service's own
    `monitoring_lost`, on a slow start, for a station's)."""
    return set(stations) <= {n["station"] for h in hooks.on(path) for n in h.body["notices"]}


def check_signatures(hooks: HookServer) -> None:
    for hook in hooks.on("/dingtalk"):
        ts = hook.query["timestamp"]
        mac = hmac.new(
            DINGTALK_SECRET.encode(), f"{ts}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
        )
        assert hook.query["sign"] == base64.b64encode(mac.digest()).decode()
        assert abs(int(ts) / 1000 - time.time()) < 3600  # DingTalk refuses older than an hour
        assert hook.body["msgtype"] == "markdown"
    for hook in hooks.on("/feishu"):
        ts = hook.body["timestamp"]
        mac = hmac.new(f"{ts}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256)
        assert hook.body["sign"] == base64.b64encode(mac.digest()).decode()
        assert hook.body["msg_type"] == "text"


def test_agent_death_is_notified_in_two_seconds_and_its_return_resolves(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    mqtt_settings: MqttSettings,
    store: InfluxStore,
    uid: str,
    hooks: HookServer,
    smtp: tuple[SmtpPeer, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_DINGTALK_SECRET", DINGTALK_SECRET)
    monkeypatch.setenv("TEST_FEISHU_SECRET", FEISHU_SECRET)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    config = load_rules_config(rules_file(tmp_path, hooks, smtp))
    station = f"s{uid}"
    registry = two_agent_station(station)
    a1, a2 = agents(tmp_path, mosquitto.url, station)
    a1.start()
    a2.start()
    reporting(mqtt_settings, station, uid)
    # Made once the agents report: its clocks (and a blind start's `monitoring_lost`) count
    # from here, and a loaded machine can take longer than that to start two agents.
    service = RulesService(
        mqtt_settings, registry, config, tmp_path / "state.db", store=store,
        client_id=f"rules-{uid}", topic_filter=f"stations/{station}/+/+",
    )  # fmt: skip
    try:
        with service:
            wait_for(lambda: settled(service), "both agents reporting, no alert", 20)
            killed = time.monotonic()
            a1.kill9()
            wait_for(lambda: firing(hooks, "agent_offline"), "the agent-offline notice", 5)
            [hook] = firing(hooks, "agent_offline")
            assert hook.at - killed < 2.0, f"notified {hook.at - killed:.2f} s after the kill"
            [notice] = hook.body["notices"]
            assert notice["station_name"] == f"达川·测试驿站 {station}"
            assert [a["device"] for a in notice["firing"]] == [f"{station}-gw1"]
            assert firing(hooks, "station_down") == []  # the other agent is alive

            # The same notice reached every channel once.
            # (On a loaded machine the service's own `monitoring_lost` may come first: a
            # start slower than its 2 s; it is the service's notice, not the station's.)
            wait_for(lambda: all(about(hooks, path, station)
                                 for path in ("/dingtalk", "/feishu", "/wecom")),
                     "the chat robots")  # fmt: skip
            check_signatures(hooks)
            wecom = about(hooks, "/wecom", station)[0]
            assert "采集网关离线" in wecom.body["markdown"]["content"]
            peer, _ = smtp
            name = f"达川·测试驿站 {station}"
            wait_for(lambda: [m for m in peer.inbox.messages if name in str(m["Subject"])],
                     "the e-mail")  # fmt: skip
            assert peer.logins == ["alerts"]  # logged in, after STARTTLS
            # Published before the spy subscribes, so what it gets is the retained copy.
            wait_for(lambda: everything_said(service), "every channel's notice out")
            with MqttSpy(mqtt_settings, f"spy-{uid}", [f"alerts/{station}/#"]) as spy:
                wait_for(lambda: spy.on("/agent_offline"), "the retained alert topic")
                alert = json.loads(spy.on("/agent_offline")[0].payload)
                assert spy.on("/agent_offline")[0].retain
                assert alert["alerts"][0]["device"] == f"{station}-gw1"

            a1.start()
            wait_for(lambda: resolved(hooks, "agent_offline"), "the resolved notice", 15)
            assert repeats(hooks, "agent_offline") == []  # no repeat, no duplicate
            # Each channel sends from its own thread: the MQTT one clears the retained alert
            # once its resolved notice is out.
            wait_for(lambda: everything_said(service), "every channel's resolved notice out")
            with MqttSpy(mqtt_settings, f"spy2-{uid}", [f"alerts/{station}/#"]) as spy:
                spy.caught_up(f"alerts/{station}/probe")  # a retained alert would come first
                assert spy.on("/agent_offline") == []  # cleared: nothing retained
    finally:
        a1.kill9()
        a2.kill9()
    rows = store.query('SELECT "state", "message" FROM "alert" WHERE "rule" = \'agent_offline\'')
    assert [r[1] for r in rows[0].values] == ["firing", "resolved"]


def test_whole_station_down_is_one_alert_and_no_device_alerts(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    mqtt_settings: MqttSettings,
    uid: str,
    hooks: HookServer,
    config: RulesConfig,
) -> None:
    station = f"s{uid}"
    registry = two_agent_station(station)
    a1, a2 = agents(tmp_path, mosquitto.url, station)
    a1.start()
    a2.start()
    reporting(mqtt_settings, station, uid)
    # Made once the agents report: its clocks (and a blind start's `monitoring_lost`) count
    # from here, and a loaded machine can take longer than that to start two agents.
    service = RulesService(
        mqtt_settings, registry, config, tmp_path / "state.db",
        client_id=f"rules-{uid}", topic_filter=f"stations/{station}/+/+",
    )  # fmt: skip
    try:
        with service:
            wait_for(lambda: settled(service), "both agents reporting, no alert", 20)
            a1.kill9()
            a2.kill9()
            wait_for(lambda: firing(hooks, "station_down"), "the station-down notice", 5)
            # The devices fall silent (1.5 s) past the station window (1 s): their alerts
            # fire, inhibited. Once the service has nothing left to say, any device alert
            # would have gone out.
            wait_for(lambda: inhibited_firing(service) >= {"agent_offline", "device_silent"},
                     "the device alerts firing, inhibited", 10)  # fmt: skip
            wait_for(lambda: everything_said(service), "every notice delivered")
            rules = {a["rule"] for h in hooks.on("/hook") for n in h.body["notices"]
                     if n["station"] == station for a in n["firing"]}  # fmt: skip
            assert rules == {"station_down"}
            others = {n["station"] for h in hooks.on("/hook") for n in h.body["notices"]}
            assert others <= {station, "_service"}  # the service's own, on a slow start
            assert len(firing(hooks, "station_down")) == 1
            inhibited = [a for a in service.book.alerts.values() if a.inhibited]
            assert {a.rule.value for a in inhibited} >= {"agent_offline", "device_silent"}
            a1.start()
            a2.start()
            wait_for(lambda: resolved(hooks, "station_down"), "the station's resolution", 20)
            assert resolved(hooks, "device_silent") == []
    finally:
        a1.kill9()
        a2.kill9()


def test_cold_dispenser_alerts_after_its_time_and_a_silence_holds_it(
    tmp_path: Path,
    mqtt_settings: MqttSettings,
    uid: str,
    hooks: HookServer,
    config: RulesConfig,
) -> None:
    station = f"s{uid}"
    agent_devices = {f"{station}-{n}": s for n, s in (AGENT1 | AGENT2).items()}
    agent_config = AgentConfig.model_validate({
        "station": station, "agent_device": f"{station}-gw1", "gateway_interval": "0.5s",
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "devices": {d: {**s, "interval": "0.5s"} for d, s in agent_devices.items()},
    })  # fmt: skip
    reg = parse_registry({"version": 1, "stations": {station: {
        "name": "冷水测试站", "model": "industry_managed",
        "devices": {**{d: {**s, "interval": "0.5s"} for d, s in agent_devices.items()},
                    f"{station}-gw1": {"kind": "gateway", "interval": "0.5s"}},
    }}})  # fmt: skip
    state = tmp_path / "state.db"
    service = RulesService(
        mqtt_settings, reg, config, state, client_id=f"rules-{uid}",
        topic_filter=f"stations/{station}/+/+",
    )  # fmt: skip
    with EdgeAgent(agent_config, mqtt_settings) as agent, service:
        wait_for(lambda: settled(service), "the agent reporting, no alert", 20)
        add_silence(state, station, "4s", registry=reg, reason="heater repair")
        silenced_at = time.monotonic()
        assert agent.simulation is not None
        with agent.simulation.lock:
            agent.simulation.sim.set_dispenser_cold(f"{station}-disp", cold=True, temp_c=40.0)
        key = f"dispenser_cold:{station}:{station}-disp"
        wait_for(lambda: key in service.book.alerts and
                 service.book.alerts[key].state.value == "firing", "the alert to fire", 10)  # fmt: skip
        assert service.book.alerts[key].silenced
        assert firing(hooks, "dispenser_cold") == []  # fired, but silenced
        wait_for(lambda: firing(hooks, "dispenser_cold"), "the notice after the silence", 10)
        assert time.monotonic() - silenced_at >= 4.0
        [hook] = firing(hooks, "dispenser_cold")
        assert "（水温 40.0 ℃）" in hook.body["text"]


def test_storm_across_stations_is_grouped_within_the_rate_limit(
    tmp_path: Path,
    mqtt_settings: MqttSettings,
    uid: str,
    hooks: HookServer,
    config: RulesConfig,
) -> None:
    stations = [f"s{uid}-{n:02d}" for n in range(40)]
    reg = will_only_stations(stations, "风暴站")
    service = RulesService(
        mqtt_settings, reg, config, tmp_path / "state.db", client_id=f"rules-{uid}"
    )  # every station's topics: devices not in this registry are ignored
    with service, MqttSpy(mqtt_settings, f"pub-{uid}", []) as pub:
        assert service.wait_subscribed()
        wait_for(lambda: service.passes >= 1, "the first pass: calm")
        # Garbage first: skipped and counted, and the service goes on.
        pub.publish(f"stations/{stations[0]}/{stations[0]}-gw/status", b"\xff{not json")
        pub.publish(f"stations/{stations[0]}/{stations[0]}-door/telemetry", b'{"v": 9}')
        pub.publish(f"stations/{stations[0]}/{stations[0]}-door/bogus", b"{}")
        wait_for(lambda: service.invalid_messages == 3, "the bad messages counted")
        for s in stations:  # forty agents' wills at once, as in a district power cut
            pub.publish(f"stations/{s}/{s}-gw/status",
                        json.dumps({"v": 1, "ts": int(time.time() * 1000), "state": "offline",
                                    "agent": "test"}))  # fmt: skip
        wait_for(lambda: notified(hooks, "/hook", stations), "every station notified", 10)
        wait_for(lambda: len({s for h in hooks.on("/dingtalk")
                              for s in stations if s in h.body["markdown"]["text"]}) == 40,
                 "every station on DingTalk", 10)  # fmt: skip
        wait_for(lambda: notified(hooks, "/slow", stations),
                 "every station on the slow channel, within its rate", 30)  # fmt: skip
    # Grouped: forty stations in a few messages, never one message each.
    assert len(hooks.on("/hook")) <= 8
    assert len(hooks.on("/dingtalk")) <= 8
    for station in stations:
        assert sum(1 for h in hooks.on("/hook") for n in h.body["notices"]
                   if n["station"] == station) == 1  # fmt: skip
    # The slow channel allows 3 messages in any 10 s: the rest waited and went as a digest.
    slow = [h.at for h in hooks.on("/slow")]
    assert all(sum(1 for t in slow if a <= t < a + 10) <= 3 for a in slow)
    assert len(slow) <= 5
    assert {n["station"] for h in hooks.on("/slow") for n in h.body["notices"]} == set(stations)
