"""Broker credentials and ACLs generated from the registry, enforced by a real Mosquitto."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.helpers import MqttSpy, station_data, wait_for
from waystation.brokerconfig import hash_password, write_broker_config
from waystation.localservers import MosquittoServer
from waystation.mqttclient import new_client
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration


def two_stations() -> Registry:
    return parse_registry({"version": 1, "stations": station_data("st-a") | station_data("st-b")})


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[MosquittoServer, dict[str, str]]]:
    files = write_broker_config(two_stations(), tmp_path / "broker")
    broker = MosquittoServer(
        tmp_path / "mosquitto",
        f"password_file {files.passwd}\nacl_file {files.acl}\n",
        anonymous=False,
    )
    broker.start()
    yield broker, yaml.safe_load(files.credentials.read_text())
    broker.stop()


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
    ingest = as_user(broker, "waystation-ingest", creds["waystation-ingest"])
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
