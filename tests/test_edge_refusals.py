"""What the broker refuses stays in the agent's outbox (real Mosquitto, broker-config's ACL).

A refused publish (MQTT 5 PUBACK reason >= 0x80; here 0x87, not authorised)
once counted as delivered: the agent emptied its outbox into nothing. Now
the readings stay, the agent backs off and says why once, and when the
broker takes them again every reading arrives, per device without a seq gap.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.config import AgentConfig
from edge.outbox import Outbox
from tests.accounts import SecuredBroker, secured_broker, two_stations
from tests.helpers import MqttSpy, readings_by_device, wait_for
from tests.test_edge_agent import seqs_in_order
from waystation.mqttreasons import reason_name

pytestmark = pytest.mark.integration

ST = "st-a"


def _config(tmp_path: Path) -> AgentConfig:
    config = AgentConfig.from_registry(
        two_stations(), ST, outbox=tmp_path / "outbox.db", interval=timedelta(seconds=0.05)
    )
    return config.model_copy(update={"gateway_interval": timedelta(seconds=0.2)})


def _first_seqs(config: AgentConfig) -> dict[str, int]:
    """One reading per device before the agent starts fixes where each seq begins.

    Stamped now: an old stamp is pruned by the agent's age bound once a slow machine has
    taken a thousand readings, and the first seq would never arrive.
    """
    now_ms = int(time.time() * 1000)
    with Outbox(config.outbox.path, max_readings=10**6, max_age=timedelta(days=1)) as ob:
        return {d: ob.put(d, str(s.kind), now_ms, {}) for d, s in config.devices.items()}


def _refusal_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "refused" in r.getMessage()
    ]


def _all_arrived(spy: MqttSpy, config: AgentConfig, first: dict[str, int]) -> None:
    """Every device's seqs from its first to its last, once each at least, in order."""
    last = dict(sqlite3.connect(config.outbox.path).execute("SELECT device, seq FROM seqs"))

    def arrived(device: str) -> list[int]:
        return seqs_in_order(readings_by_device(spy.messages).get(device, []))

    devices = [*config.devices, config.agent_device]
    wait_for(lambda: all(last[d] in arrived(d) for d in devices), "every last reading", 60)
    for device in config.devices:
        assert arrived(device) == list(range(first[device], last[device] + 1)), device


def _refused_for_a_while(agent: EdgeAgent, caplog: pytest.LogCaptureFixture) -> None:
    # Three rounds of backoff (1 s, 2 s) and resending everything kept, all refused.
    wait_for(lambda: agent.stats.readings_refused > 300, "rounds of refusals", 30)
    assert agent.stats.readings_acked == 0
    assert agent.outbox.depth > 100, "refused readings were not kept"
    [warning] = _refusal_warnings(caplog)  # once per cause, however many refusals
    assert "Not authorized" in warning
    assert "0x87" in warning


def _gateway_data(spy: MqttSpy) -> list[dict[str, Any]]:
    return [r["data"] for r in readings_by_device(spy.messages).get(f"{ST}-gw", [])]  # type: ignore[misc]


def _gateway_reported(spy: MqttSpy, reason: str) -> bool:
    return any(
        data.get("broker_refused_reason") == reason and int(data["broker_refused_total"]) > 0
        for data in _gateway_data(spy)
    )


def _acl_restored(
    broker: SecuredBroker, acl: Path, full: str, agent: EdgeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    """The ACL back as broker-config wrote it: the kept readings go, said once."""
    acl.write_text(full)
    broker.server.reload()
    wait_for(lambda: agent.outbox.depth < 50, "the kept readings sent", 90)

    def back() -> list[str]:
        return [r.getMessage() for r in caplog.records if "takes" in r.getMessage()]

    # The publisher says it once the acknowledgements are in: on a loaded machine that
    # can be after the outbox has already emptied.
    wait_for(back, "the agent saying the broker takes readings again")
    assert back() == [f"agent {ST}-gw: the broker takes readings again"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecuredBroker]:
    with secured_broker(two_stations(), tmp_path) as secured:
        yield secured


def test_a_swapped_sd_card_loses_nothing(
    broker: SecuredBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Station A's box runs with station B's credentials, then with its own again."""
    config = _config(tmp_path)
    first = _first_seqs(config)
    ingest = broker.as_user("waystation-ingest-1")
    with MqttSpy(ingest, "spy", [f"stations/{ST}/+/telemetry"]) as spy:
        with (
            caplog.at_level(logging.WARNING),
            EdgeAgent(config, broker.as_user("st-b-gw")) as agent,
        ):
            assert agent.wait_connected()  # a valid account: connected, but not for A's topics
            _refused_for_a_while(agent, caplog)
            assert not spy.messages
        right = EdgeAgent(config, broker.as_user("st-a-gw"))
        right.start()
        try:
            assert right.wait_connected()
            wait_for(lambda: right.outbox.depth < 50, "the kept readings replayed", 60)
        finally:
            right.stop()
        _all_arrived(spy, config, first)
        # The gateway's readings from the refused time say so, now that they arrived.
        assert _gateway_reported(spy, reason_name(0x87))


def test_the_acl_fixed_while_the_agent_runs(
    broker: SecuredBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker refuses the agent's own account until its ACL entry is restored."""
    acl = tmp_path / "broker" / "acl"
    full = acl.read_text()
    acl.write_text(full.replace(f"user {ST}-gw\ntopic write stations/{ST}/#\n", ""))
    broker.server.reload()
    config = _config(tmp_path)
    first = _first_seqs(config)
    ingest = broker.as_user("waystation-ingest-1")
    with MqttSpy(ingest, "spy", [f"stations/{ST}/+/telemetry"]) as spy:
        agent = EdgeAgent(config, broker.as_user(f"{ST}-gw"))
        with caplog.at_level(logging.WARNING):
            agent.start()
            try:
                assert agent.wait_connected()
                _refused_for_a_while(agent, caplog)
                _acl_restored(broker, acl, full, agent, caplog)
            finally:
                agent.stop()
        _all_arrived(spy, config, first)
        assert _gateway_reported(spy, reason_name(0x87))
    # Nothing was resent that the broker had taken: one copy of each reading at most
    # beyond the few in flight at a reconnect (none here).
    got = readings_by_device(spy.messages)
    assert all(len(rs) == len({json.dumps(r, sort_keys=True) for r in rs}) for rs in got.values())


def test_one_refused_device_does_not_stop_the_others(
    broker: SecuredBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A per-device ACL (or quota) refuses the door counter's topic only: the other
    devices keep arriving, small window or not, and the cause is said once."""
    acl = tmp_path / "broker" / "acl"
    full = acl.read_text()
    config = _config(tmp_path)
    door = f"{ST}-door"
    grants = "".join(
        f"topic write stations/{ST}/{d}/#\n" for d in [*config.devices, config.agent_device]
        if d != door
    )  # fmt: skip
    acl.write_text(full.replace(f"user {ST}-gw\ntopic write stations/{ST}/#\n",
                                f"user {ST}-gw\n{grants}"))  # fmt: skip
    broker.server.reload()
    window = config.outbox.model_copy(update={"inflight_messages": 2, "batch_readings": 5})
    config = config.model_copy(update={"outbox": window})
    first = _first_seqs(config)
    ingest = broker.as_user("waystation-ingest-1")
    with MqttSpy(ingest, "spy", [f"stations/{ST}/+/telemetry"]) as spy:
        agent = EdgeAgent(config, broker.as_user(f"{ST}-gw"))
        with caplog.at_level(logging.WARNING):
            agent.start()
            try:
                assert agent.wait_connected()
                db = sqlite3.connect(config.outbox.path)

                def door_kept() -> int:
                    query = "SELECT COUNT(*) FROM readings WHERE device = ?"
                    return int(db.execute(query, (door,)).fetchone()[0])

                # Ten windows' worth of the door's refused readings at the outbox's head.
                wait_for(lambda: agent.stats.readings_refused and door_kept() > 100,
                         "the door refused a while", 30)  # fmt: skip
                others = [d for d in config.devices if d != door]

                def arrived() -> dict[str, int]:
                    got = readings_by_device(spy.messages)
                    return {d: len(got.get(d, [])) for d in others}

                now = arrived()
                # Long after the door's refused rows would fill every window: the rest flow.
                wait_for(lambda: all(n > now[d] + 40 for d, n in arrived().items()),
                         "the other devices still arriving", 30)  # fmt: skip
                assert not readings_by_device(spy.messages).get(door)
                [warning] = _refusal_warnings(caplog)  # said once, not every round
                assert "0x87" in warning
                assert not [r for r in caplog.records if "takes readings" in r.getMessage()]
                _acl_restored(broker, acl, full, agent, caplog)
            finally:
                agent.stop()
        _all_arrived(spy, config, first)
