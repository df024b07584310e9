"""Alerts an operator can trust, on real parts.

- An orderly broker restart (SIGTERM, start) with agents, ingest and rules
  running pages nobody; an agent killed with SIGKILL afterwards still pages
  within seconds.
- Rules started against a wrong port says so within seconds and sends
  `monitoring_lost`, never a station alert; the broker appearing resolves it.
- Chat outages: a webhook answering 500 and one that hangs, each for 60 s,
  while stations go down and come back, and the rules service restarted in
  the middle: every firing arrives after recovery, no resolution before its
  firing, and the hung endpoint never holds a pile of connections.
- Quiet logs: a running service writes nothing in calm, and a failing
  channel or database is said once, not at every retry.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from app.localservers import InfluxServer, MosquittoServer, free_port
from ingest.worker import IngestConfig, IngestWorker
from rules.outage.channels import base as channels_base
from rules.outage.config import (
    LogChannel,
    RulesConfig,
    Thresholds,
    Timing,
    WebhookChannel,
    load_rules_config,
)
from rules.outage.service import RulesService
from tests.helpers import MqttSpy, wait_for
from tests.rules_helpers import (
    AGENT1,
    DINGTALK_SECRET,
    FEISHU_SECRET,
    agents,
    district_registry_file,
    firing,
    reporting,
    resolved,
    rules_file,
    running_district,
    will_only_stations,
)
from tests.rules_peers import EdgeProcess, Hook, HookServer, RulesProcess
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DINGTALK_SECRET", DINGTALK_SECRET)
    monkeypatch.setenv("TEST_FEISHU_SECRET", FEISHU_SECRET)


def _all_firing(hooks: HookServer) -> list[str]:
    return [a["rule"] for h in hooks.on("/hook") for n in h.body["notices"] for a in n["firing"]]


@pytest.fixture
def district(
    tmp_path: Path, own_mosquitto: MosquittoServer, uid: str
) -> Iterator[tuple[list[str], list[EdgeProcess]]]:
    """Two stations of two agents each, reporting to the test's own broker."""
    stations = [f"a{uid}", f"b{uid}"]
    with running_district(tmp_path, own_mosquitto.url, stations) as procs:
        yield stations, procs


def test_an_orderly_broker_restart_pages_nobody_and_a_kill_still_pages(
    tmp_path: Path,
    own_mosquitto: MosquittoServer,
    store: InfluxStore,
    uid: str,
    hooks: HookServer,
    district: tuple[list[str], list[EdgeProcess]],
) -> None:
    stations, procs = district
    settings = MqttSettings.from_url(own_mosquitto.url)
    registry = parse_registry(
        yaml.safe_load(district_registry_file(tmp_path, stations).read_text())
    )
    config = load_rules_config(rules_file(tmp_path, hooks))
    # The agents here are back within seconds; longer than their backoff can grow to here.
    th = config.thresholds.model_copy(
        update={
            "reconnect_grace": timedelta(seconds=10),
            "monitoring_lost_after": timedelta(minutes=1),
        }
    )
    config = config.model_copy(update={"thresholds": th})
    service = RulesService(settings, registry, config, tmp_path / "state.db", store=store,
                           client_id=f"rules-{uid}")  # fmt: skip
    ingest = IngestWorker(settings, store, registry, IngestConfig(client_id=f"ingest-{uid}"))
    with ingest, service:
        devices = list(service.obs.devices.values())
        wait_for(lambda: all(d.last_seen_ms > service.started_ms for d in devices)
                 and service.giving_verdicts and not service.book.alerts,
                 "every device reporting, verdicts given, calm", 30)  # fmt: skip
        restarted_ms = int(time.time() * 1000)
        own_mosquitto.restart()  # SIGTERM: Mosquitto sends every agent's will, then starts again
        wait_for(lambda: service.session.connects >= 2, "rules reconnected", 20)
        wait_for(lambda: all(d.last_seen_ms > restarted_ms for d in devices),
                 "every device reporting again", 30)  # fmt: skip
        wait_for(lambda: service.giving_verdicts, "the grace period over", 20)
        passes = service.passes
        wait_for(lambda: service.passes >= passes + 6, "more passes with verdicts")
        assert _all_firing(hooks) == [], "a broker restart paged someone"
        assert not service.book.alerts
        assert ingest.wait_subscribed(10)

        killed = time.monotonic()
        procs[0].kill9()  # a real death now: the will counts
        wait_for(lambda: firing(hooks, "agent_offline"), "the page after a SIGKILL", 10)
        [hook] = firing(hooks, "agent_offline")
        assert hook.at - killed < 3.0, f"paged {hook.at - killed:.2f} s after the kill"
        # Nothing else fires but what that agent's death means: its own devices may fall
        # silent before the notice goes out on a slow box.
        killed_devices = {f"{stations[0]}-{name}" for name in ("gw1", *AGENT1)}
        fired = {(a["rule"], a["device"]) for h in hooks.on("/hook") for n in h.body["notices"]
                 for a in n["firing"]}  # fmt: skip
        assert {device for _, device in fired} <= killed_devices, fired
        assert {rule for rule, _ in fired} <= {"agent_offline", "device_silent"}, fired


def test_rules_against_a_wrong_port_says_so_and_sends_monitoring_lost_only(
    tmp_path: Path, influxdb: InfluxServer, store: InfluxStore, uid: str, hooks: HookServer
) -> None:
    broker = MosquittoServer(tmp_path / "broker")  # its port, nothing listening yet
    rules = RulesProcess(tmp_path, [
        "--mqtt", broker.url, "--influx", influxdb.url, "--database", store.database,
        "--registry", str(district_registry_file(tmp_path, [f"s{uid}"])),
        "--rules-config", str(rules_file(tmp_path, hooks)),
        "--state", str(tmp_path / "state.db"), "--client-id", f"rules-{uid}",
    ])  # fmt: skip
    started = time.monotonic()
    rules.start()
    try:
        wait_for(lambda: any("broker unreachable" in line for line in rules.log_lines()),
                 "the unreachable warning in the log", 10)  # fmt: skip
        assert time.monotonic() - started < 10
        [line] = [line for line in rules.log_lines() if "broker unreachable" in line]
        assert "WARNING" in line
        assert "Connection refused" in line
        assert broker.url in line
        wait_for(lambda: firing(hooks, "monitoring_lost"), "the monitoring_lost notice", 15)
        [hook] = firing(hooks, "monitoring_lost")
        [notice] = hook.body["notices"]
        assert notice["station"] == "_service"
        assert notice["firing"][0]["severity"] == "critical"
        wait_for(lambda: hooks.on("/wecom"), "the chat robot")
        assert "监控中断" in hooks.on("/wecom")[0].body["markdown"]["content"]
        # Long past every device's timeout (1.5 s): still no station alert.
        passes = rules.metrics().get("waystation_rules_passes_total", 0)
        wait_for(lambda: rules.metrics().get("waystation_rules_passes_total", 0) >= passes + 10,
                 "ten more passes")  # fmt: skip
        assert _all_firing(hooks) == ["monitoring_lost"]
        metrics = rules.metrics()
        assert metrics['waystation_rules_notices_pending{channel="mqtt"}'] == 0  # not queued there
        assert metrics["waystation_rules_connected"] == 0
        assert metrics["waystation_rules_verdicts"] == 0
        assert rules.http("/healthz") == 200  # running, only cut off
        assert rules.http("/readyz") == 503

        appeared = time.monotonic()
        broker.start()  # the broker appears: monitoring is back
        wait_for(lambda: resolved(hooks, "monitoring_lost"), "monitoring_lost resolved", 20)
        assert rules.metrics()["waystation_rules_connected"] == 1
        # No agent runs here, so once the data flows its station is down: but only
        # after the grace (3 s) from the broker's return, never on the way there.
        late = [h for h in hooks.on("/hook") for n in h.body["notices"] for a in n["firing"]
                if a["rule"] != "monitoring_lost"]  # fmt: skip
        assert all(h.at - appeared >= 3.0 for h in late), [h.at - appeared for h in late]
    finally:
        rules.kill9()
        broker.stop()


def _stations_in(hook: Hook, key: str) -> set[str]:
    return {n["station"] for n in hook.body["notices"] if n[key]}


def test_a_failing_and_a_hanging_webhook_deliver_every_firing_and_never_resolve_first(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    uid: str,
    hooks: HookServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(channels_base, "RETRY_MAX_S", 5.0)  # retries capped at 5 s here
    settings = MqttSettings.from_url(mosquitto.url)
    stations = [f"s{uid}-{n:02d}" for n in range(20)]
    registry = will_only_stations(stations)
    config = RulesConfig(
        thresholds=Thresholds(reconnect_grace=timedelta(seconds=3)),
        timing=Timing(
            group_interval=timedelta(seconds=2),
            scan_every=timedelta(seconds=0.5),
            channel_failing_after=timedelta(seconds=15),
        ),
        channels=[
            WebhookChannel(type="webhook", url=hooks.url("/hook")),
            WebhookChannel(type="webhook", name="hung", url=hooks.url("/hang")),  # timeout 10 s
            LogChannel(type="log"),
        ],
    )
    state = tmp_path / "state.db"

    def service() -> RulesService:
        return RulesService(settings, registry, config, state, client_id=f"rules-{uid}")

    def status(pub: MqttSpy, station: str, state: str) -> None:
        payload = json.dumps({"v": 1, "ts": int(time.time() * 1000), "state": state,
                              "agent": "test"})  # fmt: skip
        topic = f"stations/{station}/{station}-gw/status"
        pub.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    first = service()
    with MqttSpy(settings, f"pub-{uid}", []) as pub:
        first.start()
        try:
            wait_for(lambda: first.giving_verdicts, "the first grace period over", 15)
            outage_ends = time.monotonic() + 60
            hooks.fail_until["/hook"] = outage_ends
            hooks.hang_until["/hang"] = outage_ends
            for s in stations:  # the wills of twenty agents, as after a district's power cut
                status(pub, s, "offline")
            wait_for(lambda: first.state.notice_counts().get("hung", (0, 0))[0] >= 1,
                     "the notices waiting", 10)  # fmt: skip
            wait_for(lambda: hooks.attempts.get("/hook", 0) >= 2, "the failing webhook retried")
            for s in stations[:10]:  # half of them are back while the chats are down
                status(pub, s, "online")
            wait_for(lambda: not any(a.station in stations[:10] for a in first.book.alerts.values()),
                     "their resolutions queued", 10)  # fmt: skip
        finally:
            first.stop()  # and a restart of the rules service in the middle of it
        assert time.monotonic() < outage_ends, "the restart came after the outage"
        second = service()
        with second:
            wait_for(lambda: time.monotonic() > outage_ends, "the end of the chat outage", 70)
            for path in ("/hook", "/hang"):
                wait_for(lambda: set(stations) <= {s for h in hooks.on(path)  # noqa: B023
                                                   for s in _stations_in(h, "firing")},
                         f"every firing on {path}", 45)  # fmt: skip
            for s in stations[10:]:
                status(pub, s, "online")
            for path in ("/hook", "/hang"):
                wait_for(lambda: set(stations) <= {s for h in hooks.on(path)  # noqa: B023
                                                   for s in _stations_in(h, "resolved")},
                         f"every resolution on {path}", 30)  # fmt: skip

    assert hooks.attempts["/hang"] >= 3, "the hung webhook was retried"
    # Failing past channel_failing_after (15 s): said on the other channels and in the log.
    logged = [r.getMessage() for r in caplog.records]
    assert any("告警通道发送失败 webhook" in m for m in logged), (
        "channel_failing on the log channel"
    )
    assert any("channel hung failing for" in m for m in logged)
    told = {a["device"] for h in hooks.on("/hang") for n in h.body["notices"]
            for a in n["firing"] if a["rule"] == "channel_failing"}  # fmt: skip
    assert "hung" not in told, "a channel is not told about its own failure"
    assert "webhook" in told
    # A hung endpoint holds at most one connection per running service (it was restarted once).
    assert hooks.open_most <= 2
    for path in ("/hook", "/hang"):
        _every_firing_once_and_first(hooks.on(path), stations, back_early=stations[:10])


def _every_firing_once_and_first(
    seen: list[Hook], stations: list[str], back_early: list[str]
) -> None:
    for s in stations:
        fired = [n for h in seen for n in h.body["notices"] if n["station"] == s and n["firing"]]
        assert len(fired) == 1, f"{s} fired {len(fired)} times"
        first_mention = next(n for h in seen for n in h.body["notices"] if n["station"] == s)
        assert first_mention["firing"], f"{s}: a resolution before its firing"
    merged = [n for h in seen for n in h.body["notices"] if n["station"] in back_early]
    # Back during the outage: the firing and the resolution in one message.
    assert all(n["firing"] and n["resolved"] for n in merged)
    assert any("FIRED AND RESOLVED" in h.body["text"] or "曾告警" in h.body["text"] for h in seen)


def test_a_running_service_is_quiet_and_says_repeated_failures_once(
    tmp_path: Path, mosquitto: MosquittoServer, uid: str, hooks: HookServer
) -> None:
    station = f"s{uid}"
    dead_influx = f"http://127.0.0.1:{free_port()}"  # InfluxDB down all along
    rules = RulesProcess(tmp_path, [
        "--mqtt", mosquitto.url, "--influx", dead_influx,
        "--registry", str(district_registry_file(tmp_path, [station])),
        "--rules-config", str(rules_file(tmp_path, hooks)),
        "--state", str(tmp_path / "state.db"), "--client-id", f"rules-{uid}",
    ])  # fmt: skip
    a1, a2 = agents(tmp_path, mosquitto.url, station)

    def passes() -> float:
        return rules.metrics().get("waystation_rules_passes_total", 0)

    try:
        a1.start()
        a2.start()
        reporting(MqttSettings.from_url(mosquitto.url), station, uid)
        rules.start()
        wait_for(lambda: rules.metrics().get("waystation_rules_verdicts") == 1, "verdicts", 20)
        p0 = passes()
        wait_for(lambda: passes() >= p0 + 4, "a few calm passes")
        before = rules.log_lines()
        p0 = passes()
        wait_for(lambda: passes() >= p0 + 40, "forty more passes (20 s)", 40)
        calm = rules.log_lines()[len(before) :]
        assert len(calm) <= 1, f"the service talked in calm: {calm}"
        assert not any("apscheduler" in line or "Running job" in line for line in before)

        hooks.fail_until["/hook"] = time.monotonic() + 3600  # the webhook fails from now on
        a1.kill9()  # an alert; its notice cannot be delivered; its history cannot be written
        retries = 'waystation_rules_delivery_retries_total{channel="webhook"}'
        wait_for(lambda: rules.metrics().get(retries, 0) >= 4, "the webhook retried", 30)
        lines = rules.log_lines()
        failing = [line for line in lines if "channel webhook:" in line]
        assert len(failing) == 1, failing
        history = [line for line in lines if "alert history not written" in line]
        assert len(history) <= 1, history
    finally:
        for p in (a1, a2, rules):
            p.kill9()
