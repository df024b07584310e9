"""Broker credentials and ACLs generated from the registry, enforced by a real Mosquitto."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from app.brokerconfig import hash_password, write_broker_config
from app.localservers import MosquittoServer
from ingest.worker import IngestConfig, IngestWorker
from tests.accounts import secured_broker, two_stations
from tests.helpers import MqttSpy, station_data, wait_for
from waystation.mqttclient import new_client
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[MosquittoServer, dict[str, str]]]:
    with secured_broker(two_stations(), tmp_path) as broker:
        yield broker.server, broker.credentials


def as_user(broker: MosquittoServer, user: str, password: str) -> MqttSettings:
    return MqttSettings.from_url(f"mqtt://{user}:{password}@127.0.0.1:{broker.port}")


def connect_result(settings: MqttSettings, client_id: str) -> bool:
    """Whether the broker accepts this client's CONNECT."""
    answered = threading.Event()
    accepted: list[bool] = []
    client = new_client(settings, client_id)

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        accepted.append(not rc.is_failure)  # type: ignore[attr-defined]
        answered.set()

    client.on_connect = on_connect
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        assert answered.wait(10), "the broker did not answer CONNECT"
        return accepted[0]
    finally:
        client.disconnect()
        client.loop_stop()


def test_each_credential_publishes_only_where_it_may(
    secured: tuple[MosquittoServer, dict[str, str]],
) -> None:
    broker, creds = secured
    ingest = as_user(broker, "waystation-ingest-1", creds["waystation-ingest-1"])
    with MqttSpy(ingest, "ingest", ["stations/#"]) as spy:

        def publish_then_check(user: str, refused: list[str], allowed: str) -> None:
            with MqttSpy(as_user(broker, user, creds[user]), user, []) as device:
                for topic in refused:
                    device.publish(topic, f"from {user}")
                device.publish(allowed, f"from {user}")

            # One connection keeps its order: once the allowed one is here,
            # the refused ones published before it would have been too.
            def mine() -> list[str]:
                return [m.topic for m in spy.messages if m.payload == f"from {user}".encode()]

            wait_for(lambda: allowed in mine(), f"{user}'s allowed message")
            assert mine() == [allowed]

        # The agent (gateway) publishes for every device of its own station only.
        publish_then_check("st-a-gw", ["stations/st-b/st-b-disp/telemetry"],
                           "stations/st-a/st-a-disp/telemetry")  # fmt: skip
        # A device with its own MQTT client publishes only under itself.
        publish_then_check(
            "st-a-meter",
            ["stations/st-a/st-a-disp/telemetry", "stations/st-b/st-b-meter/telemetry",
             "alerts/st-a/anything"],
            "stations/st-a/st-a-meter/telemetry",
        )  # fmt: skip


def test_wrong_password_and_anonymous_are_refused(
    secured: tuple[MosquittoServer, dict[str, str]],
) -> None:
    broker, creds = secured
    assert connect_result(as_user(broker, "st-a-gw", creds["st-a-gw"]), "ok")
    assert not connect_result(as_user(broker, "st-a-gw", "guess"), "wrong")
    assert not connect_result(as_user(broker, "nobody", "x"), "unknown")
    assert not connect_result(MqttSettings.from_url(broker.url), "anonymous")


def test_rerunning_keeps_passwords_and_adds_new_accounts(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    first = write_broker_config(
        parse_registry({"version": 1, "stations": station_data("st-a")}), out
    )
    before = yaml.safe_load(first.credentials.read_text())
    second = write_broker_config(two_stations(), out)
    after = yaml.safe_load(second.credentials.read_text())
    assert {k: after[k] for k in before} == before  # nothing existing changed
    assert sorted(second.new_accounts) == sorted(set(after) - set(before))
    assert all(a.startswith("st-b-") for a in second.new_accounts)
    assert first.credentials.stat().st_mode & 0o077 == 0
    assert second.passwd.stat().st_mode & 0o077 == 0


def test_hash_is_mosquittos_pbkdf2_format() -> None:
    salt = bytes(range(12))
    _, alg, iterations, salt_b64, digest_b64 = hash_password("s3cret", salt=salt).split("$")
    assert (alg, base64.b64decode(salt_b64)) == ("7", salt)
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, int(iterations))
    assert base64.b64decode(digest_b64) == expected


def _reading(seq: int) -> bytes:
    return json.dumps({"v": 1, "kind": "door_counter", "ts": int(time.time() * 1000) + seq,
                       "seq": seq, "data": {"in_total": seq, "out_total": seq}}).encode()  # fmt: skip


def _connect_as(settings: MqttSettings, client_id: str, events: list[str]) -> mqtt.Client:
    """A client that notes its CONNACKs and disconnections in `events`."""
    client = new_client(settings, client_id)
    client.on_connect = lambda _c, _u, _f, rc, _p: events.append(f"connack {rc}")
    client.on_disconnect = lambda _c, _u, _f, rc, _p: events.append(f"disconnect {rc}")
    client.connect(settings.host, settings.port)
    client.loop_start()
    wait_for(lambda: any(e.startswith("connack") for e in events), f"{client_id}'s CONNACK")
    return client


def test_a_gateway_account_cannot_displace_ingest_or_another_stations_agent(
    tmp_path: Path, store: InfluxStore
) -> None:
    """Without the binding, a station's credentials connecting under ingest's client id
    threw out ingest's persistent session and its queue, and under another agent's id
    knocked that agent off. With it, the broker uses the account's own name instead."""
    registry = two_stations()
    with secured_broker(registry, tmp_path) as broker:
        ingest_settings = broker.as_user("waystation-ingest-1")
        config = IngestConfig(client_id="waystation-ingest-1", topic_filter="stations/+/+/+")
        with IngestWorker(ingest_settings, store, registry, config) as worker:
            assert worker.wait_subscribed()  # the persistent session and its subscription
        # Ingest is down: the broker queues station A's readings in its session.
        with MqttSpy(broker.as_user("st-a-gw"), "edge-st-a-gw", []) as agent_a:
            for seq in range(20):
                agent_a.publish("stations/st-a/st-a-door/telemetry", _reading(seq))

        # Station B's agent is connected; station A's credentials try to be it, and ingest.
        b_events: list[str] = []
        agent_b = _connect_as(broker.as_user("st-b-gw"), "edge-st-b-gw", b_events)
        try:
            for stolen in ("waystation-ingest-1", "edge-st-b-gw", "st-b-gw"):
                rogue_events: list[str] = []
                rogue = _connect_as(broker.as_user("st-a-gw"), stolen, rogue_events)
                assert rogue_events == ["connack Success"]
                rogue.disconnect()
                rogue.loop_stop()
            # B's agent still holds its connection: a publish goes through on it.
            info = agent_b.publish("stations/st-b/st-b-gw/status", b"", qos=1, retain=True)
            info.wait_for_publish(5)
            assert info.is_published()
            assert b_events == ["connack Success"], b_events
        finally:
            agent_b.disconnect()
            agent_b.loop_stop()

        # Ingest comes back to its session, queue and all.
        with IngestWorker(ingest_settings, store, registry, config) as worker:
            assert worker.wait_subscribed()
            wait_for(lambda: worker.stats.messages_written >= 20, "the queued readings")
        [series] = store.query('SELECT "seq" FROM "door_counter"')
        assert [row[1] for row in series.values] == list(range(20))


def test_one_account_per_worker_and_the_broker_settings(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    first = write_broker_config(two_stations(), out, ingest_workers=2, rules_workers=2)
    creds = yaml.safe_load(first.credentials.read_text())
    services = sorted(a for a in creds if a.startswith("waystation-"))
    assert services == ["waystation-ingest-1", "waystation-ingest-2",
                        "waystation-rules-1", "waystation-rules-2"]  # fmt: skip
    acl = first.acl.read_text()
    assert (
        "user waystation-ingest-2\ntopic read stations/#\ntopic write waystation/deadletter/#"
        in acl
    )
    conf = first.mosquitto_conf.read_text().splitlines()
    assert f"password_file {first.passwd.resolve()}" in conf
    assert f"acl_file {first.acl.resolve()}" in conf
    assert "use_username_as_clientid true" in conf
    assert "allow_anonymous false" in conf
    # Fewer workers later: the accounts that went are named, the others keep their passwords.
    second = write_broker_config(two_stations(), out)
    assert second.removed_accounts == ["waystation-ingest-2", "waystation-rules-2"]
    after = yaml.safe_load(second.credentials.read_text())
    assert after["waystation-ingest-1"] == creds["waystation-ingest-1"]
