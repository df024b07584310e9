"""The agent over TLS with a username and password, on a real Mosquitto that requires both.

The broker gets a certificate from a CA made here (openssl), a password file
made by `mosquitto_passwd`, and no anonymous access. The agent trusts the CA
through `--mqtt-ca` (WAYSTATION_MQTT_CA).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from edge.agent import EdgeAgent
from edge.config import AgentConfig
from tests.helpers import MqttSpy, station_registry, wait_for
from tests.tls import make_ca_and_cert, run
from waystation.mqttsession import SessionOptions, open_session
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[MosquittoServer, Path]]:
    ca, cert, key = make_ca_and_cert(tmp_path)
    passwd = tmp_path / "passwd"
    run("mosquitto_passwd", "-b", "-c", passwd, "st-tls-gw", "s3cret")
    run("mosquitto_passwd", "-b", passwd, "reader", "r3ad")
    for f in (passwd, key):
        f.chmod(0o600)
    broker = MosquittoServer(
        tmp_path / "mosquitto",
        f"certfile {cert}\nkeyfile {key}\npassword_file {passwd}\n",
        anonymous=False,
    )
    broker.start()
    yield broker, ca
    broker.stop()


def _agent(broker: MosquittoServer, ca: Path, tmp_path: Path, userinfo: str) -> EdgeAgent:
    registry = station_registry("st-tls")
    config = AgentConfig.from_registry(
        registry, "st-tls", outbox=tmp_path / "outbox.db", interval=timedelta(seconds=0.1)
    )
    url = f"mqtts://{userinfo}127.0.0.1:{broker.port}"
    return EdgeAgent(config, MqttSettings.from_url(url, ca))


def test_agent_publishes_over_tls_with_its_credentials(
    secure_broker: tuple[MosquittoServer, Path], tmp_path: Path
) -> None:
    broker, ca = secure_broker
    reader = MqttSettings.from_url(f"mqtts://reader:r3ad@127.0.0.1:{broker.port}", ca)
    with MqttSpy(reader, "reader", ["stations/st-tls/+/telemetry"]) as spy:
        with _agent(broker, ca, tmp_path, "st-tls-gw:s3cret@") as agent:
            assert agent.wait_connected()
            wait_for(lambda: len(spy.on("/telemetry")) >= 10, "readings over TLS")
        assert agent.stats.readings_acked >= 10


@pytest.mark.parametrize("userinfo", ["st-tls-gw:wrong@", ""], ids=["wrong-password", "anonymous"])
def test_wrong_or_missing_credentials_are_refused(
    secure_broker: tuple[MosquittoServer, Path],
    tmp_path: Path,
    userinfo: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="waystation.mqtt")
    broker, ca = secure_broker
    agent = _agent(broker, ca, tmp_path, userinfo)
    agent.start()
    try:
        assert not agent.wait_connected(3)
        wait_for(lambda: agent.outbox.depth > 0, "readings kept for later")
        assert agent.stats.readings_acked == 0
        refusals = [
            r.getMessage() for r in caplog.records if "refused the connection" in r.getMessage()
        ]
        assert len(refusals) == 1, "said once, however often it retries"
        assert "agent st-tls-gw" in refusals[0]
        assert (
            "Not authorized (0x87)" in refusals[0]
            or "Bad User Name or Password (0x86)" in refusals[0]
        )
    finally:
        agent.stop(drain_s=0)


def test_an_untrusted_broker_certificate_is_refused(
    secure_broker: tuple[MosquittoServer, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker, _ = secure_broker
    (tmp_path / "other").mkdir()
    other_ca, _, _ = make_ca_and_cert(tmp_path / "other")  # a CA the broker's cert is not from
    agent = _agent(broker, other_ca, tmp_path, "st-tls-gw:s3cret@")
    caplog.set_level(logging.WARNING, logger="waystation.mqtt")
    agent.start()
    try:
        assert not agent.wait_connected(3)
        unreachable = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
        assert "CERTIFICATE_VERIFY_FAILED" in unreachable[0]
    finally:
        agent.stop(drain_s=0)


def test_plain_mqtt_at_a_tls_listener_is_said(
    secure_broker: tuple[MosquittoServer, Path], caplog: pytest.LogCaptureFixture, uid: str
) -> None:
    """The 1883/8883 mix-up: the TLS listener drops the plain CONNECT; the session says so."""
    caplog.set_level(logging.WARNING, logger="waystation.mqtt")
    broker, _ = secure_broker
    session = open_session(
        MqttSettings.from_url(f"mqtt://st-tls-gw:s3cret@127.0.0.1:{broker.port}"),
        SessionOptions(client_id=f"c-{uid}", label="test"),
    )
    session.start()
    try:
        wait_for(
            lambda: any("did not answer CONNECT" in r.getMessage() for r in caplog.records),
            "the warning",
            20,
        )
        assert not session.connected
    finally:
        session.stop()
