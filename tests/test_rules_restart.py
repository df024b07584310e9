"""The rules service killed and restarted: no duplicate notice, no lost resolution, no false alarm.

`waystation rules` runs as a child process and is stopped with SIGKILL; its
state file, the broker's retained agent statuses and InfluxDB are all it has
when it comes back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from app.localservers import InfluxServer, MosquittoServer
from tests.helpers import MqttSpy, wait_for
from tests.rules_helpers import (
    DINGTALK_SECRET,
    FEISHU_SECRET,
    agents,
    firing,
    reporting,
    resolved,
    rules_file,
    two_agent_station_data,
)
from tests.rules_peers import EdgeProcess, HookServer, RulesProcess
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration


def rules_process(
    tmp_path: Path, mosquitto: MosquittoServer, influxdb: InfluxServer, store: InfluxStore,
    hooks: HookServer, station: str, uid: str,
) -> RulesProcess:  # fmt: skip
    registry = tmp_path / "stations.yaml"
    registry.write_text(
        yaml.safe_dump(two_agent_station_data(station), allow_unicode=True),
        encoding="utf-8",
    )  # fmt: skip
    return RulesProcess(tmp_path, [
        "--mqtt", mosquitto.url, "--influx", influxdb.url, "--database", store.database,
        "--registry", str(registry), "--rules-config", str(rules_file(tmp_path, hooks)),
        "--state", str(tmp_path / "state.db"), "--client-id", f"rules-{uid}",
    ])  # fmt: skip


def reported_while_down(settings: MqttSettings, station: str, span_s: float) -> None:
    """Until every device of the station has reported for `span_s` more, by its readings' times."""
    since_ms = int(time.time() * 1000)
    with MqttSpy(settings, f"gap-{station}", [f"stations/{station}/+/telemetry"]) as spy:

        def covered() -> bool:
            newest: dict[str, int] = {}
            for m in spy.messages:
                newest[m.topic] = max(newest.get(m.topic, 0), json.loads(m.payload)["ts"])
            return len(newest) == 6 and min(newest.values()) - since_ms > span_s * 1000

        wait_for(covered, f"every device reporting {span_s} s past the kill", 20)


def _all_delivered(rules: RulesProcess) -> bool:
    metrics = rules.metrics()
    pending = [v for k, v in metrics.items() if k.startswith("waystation_rules_notices_pending")]
    sent = metrics.get('waystation_rules_notices_sent_total{channel="webhook"}', 0)
    return sent >= 1 and bool(pending) and not any(pending)


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DINGTALK_SECRET", DINGTALK_SECRET)
    monkeypatch.setenv("TEST_FEISHU_SECRET", FEISHU_SECRET)


@pytest.fixture
def running(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    influxdb: InfluxServer,
    store: InfluxStore,
    mqtt_settings: MqttSettings,
    uid: str,
    hooks: HookServer,
) -> Iterator[tuple[RulesProcess, EdgeProcess, EdgeProcess]]:
    """A two-agent station reporting, watched by `waystation rules`; all killed afterwards."""
    station = f"s{uid}"
    rules = rules_process(tmp_path, mosquitto, influxdb, store, hooks, station, uid)
    a1, a2 = agents(tmp_path, mosquitto.url, station)
    try:
        a1.start()
        a2.start()
        rules.start()
        reporting(mqtt_settings, station, uid)
        yield rules, a1, a2
    finally:
        for p in (a1, a2, rules):
            p.kill9()


def test_killed_during_an_outage_it_neither_repeats_nor_forgets(
    running: tuple[RulesProcess, EdgeProcess, EdgeProcess], hooks: HookServer
) -> None:
    rules, a1, a2 = running
    rules.run_passes_with_verdicts(4)  # calm passes
    assert hooks.on("/hook") == []
    a1.kill9()
    a2.kill9()
    wait_for(lambda: firing(hooks, "station_down"), "the station-down notice", 10)
    # Delivered means acknowledged and crossed off in the state file. A kill between the
    # webhook's 200 and that write sends the notice again after the restart (at least once,
    # never lost); this test is about the lifecycle not repeating what it had delivered.
    wait_for(lambda: _all_delivered(rules), "every channel's notice recorded as delivered")
    rules.kill9()
    rules.start()
    # Passes of the restarted service past its grace and a group interval (2 s).
    rules.run_passes_with_verdicts(4)
    assert len(firing(hooks, "station_down")) == 1, "notified again after the restart"
    assert len(hooks.on("/hook")) == 1
    a1.start()
    a2.start()
    wait_for(lambda: resolved(hooks, "station_down"), "the resolution after the restart", 20)
    assert len(resolved(hooks, "station_down")) == 1


def test_restarted_in_calm_no_false_alert_and_an_outage_meanwhile_is_caught(
    running: tuple[RulesProcess, EdgeProcess, EdgeProcess],
    hooks: HookServer,
    mqtt_settings: MqttSettings,
    uid: str,
) -> None:
    rules, a1, a2 = running
    wait_for(lambda: rules.passes() >= 2, "passes before the kill")
    rules.kill9()
    reported_while_down(mqtt_settings, f"s{uid}", 1.5)  # longer than every device's timeout
    rules.start()
    rules.run_passes_with_verdicts(4)  # past a group interval (2 s): an alert would be out
    assert hooks.on("/hook") == [], "a restart in calm raised an alert"
    rules.kill9()
    a1.kill9()  # the outage happens while nobody watches
    a2.kill9()
    rules.start()
    wait_for(lambda: firing(hooks, "station_down"), "the outage found on start", 30)
