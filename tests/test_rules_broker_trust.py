"""The rules trust the stream only when the broker is proven to deliver it (real Mosquitto).

- An account that may connect and subscribe but not read: the rules' own
  probe never comes back, so no verdicts, one clear ERROR and
  `monitoring_lost`, never a station alert, while every agent reports.
- An orderly restart of a broker that holds a big queue (its shutdown save
  takes long after it sent the wills): nobody is paged.
- A broker that keeps restarting: a dead agent is still paged, and the
  blindness is `monitoring_lost` although each outage is short.
- A registry with a slow meter: a dead agent is paged after the agents'
  backoff, not after the meter's interval.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from app.localservers import MosquittoServer
from rules.outage import service as rules_service
from rules.outage.alerts import AlertState
from rules.outage.config import LogChannel, RulesConfig, Thresholds, Timing
from rules.outage.details import detail_text
from rules.outage.detect import Rule
from rules.outage.service import RulesService
from tests.accounts import secured_broker
from tests.helpers import wait_for
from tests.rules_helpers import agents, running_district, two_agent_station_data
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration


def _district(stations: list[str], slow: dict[str, str] | None = None) -> Registry:
    """Two-agent stations; `slow`: device id -> the interval the registry gives it."""
    data: dict[str, Any] = {"version": 1, "stations": {}}
    for station in stations:
        data["stations"] |= two_agent_station_data(station)["stations"]
    for device, interval in (slow or {}).items():
        station = next(s for s in stations if device.startswith(f"{s}-"))
        data["stations"][station]["devices"][device]["interval"] = interval
    return parse_registry(data)


def _config(**thresholds: object) -> RulesConfig:
    return RulesConfig(
        thresholds=Thresholds(station_window=timedelta(seconds=1), **thresholds),  # type: ignore[arg-type]
        timing=Timing(scan_every=timedelta(seconds=0.5), group_interval=timedelta(seconds=2)),
        channels=[LogChannel(type="log")],
    )


def _firing(service: RulesService) -> list[tuple[str, str | None]]:
    return sorted(
        (a.rule.value, a.device)
        for a in service.book.alerts.values()
        if a.state is AlertState.FIRING or a.fired_ms is not None
    )


def _all_reporting(service: RulesService, since_ms: int) -> bool:
    return all(d.last_seen_ms > since_ms for d in service.obs.devices.values())


def test_an_account_that_may_not_read_gets_no_verdicts_and_one_clear_error(
    tmp_path: Path, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    stations = [f"a{uid}", f"b{uid}"]
    registry = _district(stations)
    config = _config(
        reconnect_grace=timedelta(seconds=1), monitoring_lost_after=timedelta(seconds=3)
    )
    with secured_broker(registry, tmp_path) as broker:
        port = broker.server.port
        urls = {
            gw: f"mqtt://{gw}:{broker.credentials[gw]}@127.0.0.1:{port}"
            for s in stations
            for gw in (f"{s}-gw1", f"{s}-gw2")
        }
        procs = []  # each agent with its own gateway's account
        for s in stations:
            a1, a2 = agents(tmp_path / s, urls[f"{s}-gw1"], s)
            a2.args[a2.args.index("--mqtt") + 1] = urls[f"{s}-gw2"]
            procs += [a1, a2]
        right = RulesService(broker.as_user("waystation-rules-1"), registry, config,
                             tmp_path / "right.db")  # fmt: skip
        # A careless copy of a device's credentials: it may connect and subscribe, and the
        # broker grants the subscription, but it may read nothing.
        wrong = RulesService(broker.as_user(f"{stations[1]}-door"), registry, config,
                             tmp_path / "wrong.db")  # fmt: skip
        for p in procs:
            p.start()
        try:
            with right, wrong:
                wait_for(lambda: right.giving_verdicts and _all_reporting(right, right.started_ms),
                         "every device reporting, seen by the rules with their own account",
                         30)  # fmt: skip
                assert wrong.session.subscribed, "the broker granted the subscription"
                lost = f"{Rule.MONITORING_LOST}:_service:*"
                wait_for(lambda: lost in wrong.book.alerts, "monitoring_lost", 20)
                # Long past every device's timeout (1.5 s): still no station alert.
                passes = wrong.passes
                wait_for(lambda: wrong.passes >= passes + 10, "ten more passes")
                assert [rule for rule, _ in _firing(wrong)] == ["monitoring_lost"]
                assert not wrong.giving_verdicts
                assert not wrong.stream_proven
                detail = wrong.book.alerts[lost].detail
                assert detail.startswith("no_probe:mqtt://")  # a token, worded per language
                worded = detail_text(Rule.MONITORING_LOST, detail, "zh")
                assert "收不到任何消息" in worded, worded
                assert _firing(right) == [], "the district reported all along"
                errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
                said = [m for m in errors if "does not come back" in m]
                assert len(said) == 1, errors
                assert f"{stations[1]}-door" in said[0]
        finally:
            for p in procs:
                p.kill9()


def _fill_queue(port: int, count: int, size: int) -> None:
    """`count` QoS 1 messages queued in the broker for a persistent session that is away:
    a data path whose consumer is down, the case the broker's queue limits are sized for."""
    sink = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="queue-sink",
                       protocol=MQTTProtocolVersion.MQTTv311, clean_session=False)  # fmt: skip
    subscribed = threading.Event()
    sink.on_subscribe = lambda *_: subscribed.set()
    sink.connect("127.0.0.1", port)
    sink.loop_start()
    sink.subscribe("backlog/x", qos=1)
    assert subscribed.wait(10)
    sink.disconnect()
    sink.loop_stop()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="queue-filler")
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    payload = b"x" * size
    last = None
    for n in range(count):
        last = pub.publish("backlog/x", payload, qos=1)
        if n % 5000 == 4999:
            last.wait_for_publish(60)
    assert last is not None
    last.wait_for_publish(60)
    pub.disconnect()
    pub.loop_stop()


def test_an_orderly_restart_of_a_broker_with_a_big_queue_pages_nobody(
    tmp_path: Path, own_mosquitto: MosquittoServer, uid: str
) -> None:
    # 100 MB queued (under the shipped 128 MiB cap): Mosquitto sends every will, then
    # saves it all before it closes the connections, longer than any fixed settle time.
    # In 10 kB messages: the broker's save takes as long as for 100,000 of 1 kB (about
    # 0.5 s here), and they are queued in 2 s instead of the 25-40 s paho takes for those.
    _fill_queue(own_mosquitto.port, 10_000, 10 * 1024)
    stations = [f"a{uid}", f"b{uid}"]
    registry = _district(stations)
    config = _config(
        reconnect_grace=timedelta(seconds=10), monitoring_lost_after=timedelta(minutes=1)
    )
    settings = MqttSettings.from_url(own_mosquitto.url)
    service = RulesService(settings, registry, config, tmp_path / "state.db",
                           client_id=f"rules-{uid}")  # fmt: skip
    with running_district(tmp_path, own_mosquitto.url, stations), service:
        wait_for(lambda: _all_reporting(service, service.started_ms) and service.giving_verdicts
                 and not service.book.alerts, "every device reporting, verdicts given, calm",
                 30)  # fmt: skip
        restarted_ms = int(time.time() * 1000)
        own_mosquitto.restart()
        wait_for(lambda: service.session.connects >= 2, "rules reconnected", 30)
        wait_for(lambda: _all_reporting(service, restarted_ms), "every device reporting again", 30)
        wait_for(lambda: service.giving_verdicts, "the grace over", 30)
        passes = service.passes
        wait_for(lambda: service.passes >= passes + 6, "more passes with verdicts")
        assert service.wills_held >= 1, "the wills came before the connection went"
        assert _firing(service) == [], "a broker restart paged someone"


def test_a_broker_that_keeps_restarting_still_pages_a_dead_agent_and_says_it_is_blind(
    tmp_path: Path, own_mosquitto: MosquittoServer, uid: str
) -> None:
    stations = [f"a{uid}"]
    registry = _district(stations)
    # A grace longer than the broker stays up: before, every reconnect started it again.
    config = _config(reconnect_grace=timedelta(seconds=25),
                     monitoring_lost_after=timedelta(seconds=18))  # fmt: skip
    settings = MqttSettings.from_url(own_mosquitto.url)
    service = RulesService(settings, registry, config, tmp_path / "state.db",
                           client_id=f"rules-{uid}")  # fmt: skip
    stop = threading.Event()
    restarts: list[float] = []

    def crash_loop() -> None:
        # Up 14 s at a time: longer than a connection must last for the agents to
        # come back at once (10 s), shorter than the grace.
        while not stop.wait(14):
            own_mosquitto.restart()
            restarts.append(time.monotonic())

    with running_district(tmp_path, own_mosquitto.url, stations) as procs, service:
        wait_for(lambda: _all_reporting(service, service.started_ms) and service.giving_verdicts
                 and not service.watch.in_spell,
                 "every device reporting, verdicts given for a while", 60)  # fmt: skip
        procs[0].kill9()  # sta-gw1 dies as the broker starts restarting
        own_mosquitto.restart()
        killed = time.monotonic()
        looping = threading.Thread(target=crash_loop, daemon=True)
        looping.start()
        try:
            gw1 = f"{Rule.AGENT_OFFLINE}:{stations[0]}:{stations[0]}-gw1"
            lost = f"{Rule.MONITORING_LOST}:_service:*"
            wait_for(lambda: gw1 in service.book.alerts and lost in service.book.alerts,
                     "the dead agent paged and monitoring_lost, while the broker flaps",
                     45)  # fmt: skip
            assert service.book.alerts[gw1].state is AlertState.FIRING
            assert service.book.alerts[lost].state is AlertState.FIRING
            assert time.monotonic() - killed < 40
            assert restarts, "the broker restarted again while the page was due"
            devices = {f"{stations[0]}-{n}" for n in ("gw1", "meter", "disp")}
            assert {d for _, d in _firing(service) if d} <= devices, _firing(service)
        finally:
            stop.set()
            looping.join()


def test_a_slow_meter_does_not_delay_the_page_for_a_dead_agent(
    tmp_path: Path, own_mosquitto: MosquittoServer, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The agents' backoff is short here (3 s) so the test is quick; the meter is read
    # every 15 min (the registry says; the simulated one reports faster).
    monkeypatch.setattr(rules_service, "RECONNECT_MAX_S", 3.0)
    stations = [f"a{uid}"]
    registry = _district(stations, {f"a{uid}-meter": "15m"})
    config = _config(monitoring_lost_after=timedelta(minutes=1))  # the grace as it comes
    settings = MqttSettings.from_url(own_mosquitto.url)
    service = RulesService(settings, registry, config, tmp_path / "state.db",
                           client_id=f"rules-{uid}")  # fmt: skip
    assert service.grace_ms == 5000  # the agents' backoff and their return, not 15 min
    with running_district(tmp_path, own_mosquitto.url, stations) as procs, service:
        wait_for(lambda: _all_reporting(service, service.started_ms) and service.giving_verdicts,
                 "every device reporting, verdicts given", 30)  # fmt: skip
        procs[1].kill9()  # gw2 dies as the broker restarts: its will goes out with the rest
        own_mosquitto.restart()
        back = time.monotonic()
        gw2 = f"{Rule.AGENT_OFFLINE}:{stations[0]}:{stations[0]}-gw2"
        wait_for(lambda: gw2 in service.book.alerts, "the dead agent paged", 30)
        assert time.monotonic() - back < 20, "paged after the backoff, not the meter's interval"
