"""The one MQTT session adapter on a real Mosquitto: unreachable, refused, lost, taken over.

Each case is what an operator meets: a wrong port, a wrong password, a broker
restart, two agents sharing one login. Each must be a WARNING naming the
reason, said once and not once per retry, and the session must come back by
itself.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from tests.helpers import MqttSpy, wait_for
from tests.rules_peers import HookServer, SilentServer
from waystation import mqttreport
from waystation.backoff import Backoff
from waystation.logthrottle import Repeats, format_duration
from waystation.mqttreasons import Packet, hint, is_failure, reason_name
from waystation.mqttsession import (
    Engine,
    InboundMessage,
    MqttSession,
    SessionCallbacks,
    SessionOptions,
    Will,
    open_session,
)
from waystation.settings import MqttSettings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("quick_reconnects")]


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "waystation.mqtt" and r.levelno == logging.WARNING and text in r.getMessage()
    ]


def _twins(
    broker: MosquittoServer, client_id: str, label: str, engine: Engine = Engine.PAHO
) -> list[MqttSession]:
    """Two sessions started with one client id (a copied config): they take turns."""
    settings = MqttSettings.from_url(broker.url)
    sessions: list[MqttSession] = [
        open_session(
            settings, SessionOptions(client_id=client_id, label=f"{label} {n}", engine=engine)
        )
        for n in (1, 2)
    ]
    for s in sessions:
        s.start()
    return sessions


def test_unreachable_is_said_once_then_counted_and_the_return_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, uid: str, engine: Engine
) -> None:
    caplog.set_level(logging.INFO, logger="waystation.mqtt")
    broker = MosquittoServer(tmp_path / "later")  # its port is chosen, nothing listens yet
    connected: list[bool] = []
    session = open_session(
        MqttSettings.from_url(broker.url),
        SessionOptions(client_id=f"late-{uid}", label="rules", engine=engine),
        SessionCallbacks(on_connected=connected.append),
    )
    session.start()
    try:
        wait_for(lambda: _warnings(caplog, "broker unreachable"), "the unreachable warning", 5)
        [line] = _warnings(caplog, "broker unreachable")
        assert "ConnectionRefusedError" in line
        assert f"{broker.url}" in line
        assert f"client id late-{uid}" in line
        # Several more attempts fail; not one more line.
        wait_for(lambda: session._repeats._runs["unreachable"].count >= 4, "more attempts", 10)  # type: ignore[attr-defined]
        assert len(_warnings(caplog, "unreachable")) == 1
        assert not session.connected
        assert session.last_connected_at is None
        broker.start()
        assert session.wait_connected(10)
        assert _warnings(caplog, "connected again after")
        assert session.connects == 1
        assert connected == [False]
        assert session.last_connected_at is not None
        assert abs(session.last_connected_at - time.time()) < 10
    finally:
        session.stop()
        broker.stop()


def test_a_broker_restart_is_lost_then_back_and_messages_flow_again(
    own_mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture, uid: str, engine: Engine
) -> None:
    caplog.set_level(logging.INFO, logger="waystation.mqtt")
    settings = MqttSettings.from_url(own_mosquitto.url)
    received: list[str] = []
    events: list[str] = []

    def on_message(msg: InboundMessage) -> None:
        received.append(msg.payload.decode())

    session = open_session(
        settings,
        SessionOptions(
            client_id=f"sub-{uid}",
            label="ingest",
            subscriptions=(f"t/{uid}/#",),
            engine=engine,
        ),
        SessionCallbacks(
            on_message=on_message,
            on_connected=lambda present: events.append(f"up {present}"),
            on_disconnected=lambda: events.append("down"),
        ),
    )
    session.start()
    try:
        assert session.wait_subscribed(10)
        with MqttSpy(settings, f"pub-{uid}", []) as pub:
            pub.publish(f"t/{uid}/a", "one")
        wait_for(lambda: received == ["one"], "the first message")
        first = session.last_connected_at
        own_mosquitto.restart()
        wait_for(lambda: _warnings(caplog, "lost the broker"), "the loss", 10)
        assert "the connection was closed" in _warnings(caplog, "lost the broker")[0]
        assert session.wait_subscribed(15), "re-subscribed after the restart"
        assert _warnings(caplog, "connected again after")
        assert session.connects == 2
        assert first is not None
        assert session.last_connected_at is not None
        assert session.last_connected_at > first
        with MqttSpy(settings, f"pub2-{uid}", []) as pub:
            pub.publish(f"t/{uid}/b", "two")
        wait_for(lambda: received == ["one", "two"], "a message after the restart")
        assert events == ["up False", "down", "up False"]
    finally:
        session.stop()


def test_two_clients_with_one_id_are_reported_as_a_takeover_once(
    mosquitto: MosquittoServer, caplog: pytest.LogCaptureFixture, uid: str, engine: Engine
) -> None:
    caplog.set_level(logging.INFO, logger="waystation.mqtt")
    sessions = _twins(mosquitto, f"edge-{uid}", "agent", engine)
    try:
        wait_for(
            lambda: _warnings(caplog, "another client is connecting with the same client id"),
            "the takeover warning",
            20,
        )
        line = _warnings(caplog, "another client")[0]
        assert f"client id edge-{uid}" in line
        assert "Session taken over (0x8E)" in line
        # They keep knocking each other off; it is said once per client, not once per knock.
        wait_for(lambda: sum(s.connects for s in sessions) >= 10, "more knocks", 20)
        assert len(_warnings(caplog, "another client")) <= 2
        assert len(caplog.records) <= 12, [r.getMessage() for r in caplog.records]
    finally:
        for s in sessions:
            s.stop()


def test_refused_credentials_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, engine: Engine
) -> None:
    caplog.set_level(logging.INFO, logger="waystation.mqtt")
    passwd = tmp_path / "passwd"
    broker = MosquittoServer(tmp_path / "m", f"password_file {passwd}\n", anonymous=False)
    passwd.write_text("")  # nobody may log in
    broker.start()
    try:
        session = open_session(
            MqttSettings.from_url(f"mqtt://nobody:wrong@127.0.0.1:{broker.port}"),
            SessionOptions(client_id="refused", label="agent x", engine=engine),
        )
        session.start()
        try:
            wait_for(lambda: _warnings(caplog, "refused the connection"), "the refusal", 10)
            [line] = _warnings(caplog, "refused the connection")
            assert "Not authorized (0x87)" in line or "Bad User Name or Password (0x86)" in line
            assert not session.connected
        finally:
            session.stop()
    finally:
        broker.stop()


def test_a_will_is_sent_on_a_lost_connection_not_on_stop(
    mosquitto: MosquittoServer, uid: str, engine: Engine
) -> None:
    settings = MqttSettings.from_url(mosquitto.url)
    will = Will(topic=f"w/{uid}", payload="gone", retain=False)
    with MqttSpy(settings, f"spy-{uid}", [f"w/{uid}"]) as spy:
        session = open_session(
            settings, SessionOptions(client_id=f"w-{uid}", label="t", will=will, engine=engine)
        )
        session.start()
        assert session.wait_connected(10)
        mid = session.publish(f"w/{uid}", "hello", qos=1)
        assert mid > 0
        session.stop(drain_s=5)
        wait_for(lambda: [m.payload for m in spy.messages] == [b"hello"], "the message")
        # An orderly stop: no will. Checked after a second message proves the spy is live.
        spy.publish(f"w/{uid}", "after")
        wait_for(lambda: len(spy.messages) == 2, "the spy's own message")
        assert [m.payload for m in spy.messages] == [b"hello", b"after"]


# --- the parts without a broker --------------------------------------------------------------


def test_backoff_doubles_to_its_cap_with_jitter_and_a_floor() -> None:
    b = Backoff(initial_s=1.0, max_s=30.0, floor_s=0.5, rng=random.Random(7))
    ceilings = []
    for _ in range(8):
        ceilings.append(b.ceiling_s)
        delay = b.next_delay()
        assert 0.5 <= delay <= ceilings[-1]
    assert ceilings == [1, 2, 4, 8, 16, 30, 30, 30]
    draws = {round(b.next_delay(), 3) for _ in range(50)}
    assert len(draws) > 40, "jittered, not a fixed delay"
    b.reset()
    assert b.ceiling_s == 1.0


def test_retry_after_is_honoured_but_zero_does_not_hot_loop() -> None:
    b = Backoff(initial_s=0.5, max_s=30.0, floor_s=0.1, max_retry_after_s=60, rng=random.Random(1))
    assert all(b.next_delay(0.0) >= 0.1 for _ in range(100))  # Retry-After: 0
    b.reset()
    assert b.next_delay(12.0) >= 12.0  # the server's wish, when longer than ours
    assert b.next_delay(3600.0) == 60  # capped: asked again after a minute
    b = Backoff(initial_s=0.5, max_s=30.0, floor_s=0.1, rng=random.Random(2))
    for _ in range(10):
        b.next_delay()
    assert b.next_delay(1.0) >= 0.1  # ours may be longer than the server's: the larger wins
    with pytest.raises(ValueError, match="floor_s"):
        Backoff(initial_s=1.0, max_s=30.0, floor_s=0.0)


def test_repeats_say_once_then_every_period_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = logging.getLogger("test.repeats")
    caplog.set_level(logging.INFO, logger="test.repeats")
    repeats = Repeats(log, every_s=300, clock=lambda: now[0])
    for second in range(0, 601, 10):
        now[0] = second
        repeats.warning("down", "thing %s down", "x")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "thing x down"
    assert len(lines) == 3  # at 0 s, 300 s and 600 s
    assert "still, after 5 min; 30 more time(s)" in lines[1]
    assert repeats.clear("down") == (600, 61)
    assert repeats.clear("down") is None
    assert format_duration(4.25) == "4.2 s"
    assert format_duration(7500) == "2 h 5 min"


def test_reason_codes_are_named_from_the_standard() -> None:
    assert reason_name(0x87) == "Not authorized (0x87)"
    assert reason_name(0x8E, Packet.DISCONNECT) == "Session taken over (0x8E)"
    assert reason_name(0, Packet.DISCONNECT) == "Normal disconnection (0x00)"
    assert reason_name(0, Packet.SUBACK) == "Granted QoS 0 (0x00)"
    assert reason_name(0x10) == "No matching subscribers (0x10)"
    assert reason_name(0xF7) == "unknown reason (0xF7)"
    assert not is_failure(0x10)
    assert is_failure(0x80)
    assert is_failure(0x97)
    assert hint(0x8E) == "another client connected with this client id"
    assert hint(0x10) is None


@pytest.mark.parametrize("topic_filter", ["stations/s-+/+", "a/#/b", ""])
def test_a_bad_topic_filter_is_refused_before_connecting(topic_filter: str) -> None:
    with pytest.raises(ValueError, match="filter"):
        SessionOptions(client_id="x", label="x", subscriptions=(topic_filter,))


@pytest.mark.parametrize("peer", ["silent", "http"])
def test_a_port_that_is_not_a_broker_is_said(
    peer: str, caplog: pytest.LogCaptureFixture, uid: str
) -> None:
    """Something accepts the connection but never says CONNACK: a hung process, or
    another server's port (InfluxDB's, say). It must not pass in silence."""
    caplog.set_level(logging.INFO, logger="waystation.mqtt")
    with SilentServer() if peer == "silent" else HookServer() as server:
        port = server.port if isinstance(server, SilentServer) else server.server.server_address[1]
        session = open_session(
            MqttSettings.from_url(f"mqtt://127.0.0.1:{port}"),
            SessionOptions(client_id=f"c-{uid}", label="test", keepalive_s=2),
        )
        session.start()
        try:
            wait_for(lambda: _warnings(caplog, "did not answer CONNECT"), "the warning", 20)
            [line] = _warnings(caplog, "did not answer CONNECT")
            assert f"127.0.0.1:{port}" in line
            expected = "no CONNACK within" if peer == "silent" else "closed before a CONNACK"
            assert expected in line
            assert not session.connected
        finally:
            session.stop()


def test_a_slow_takeover_ping_pong_is_named_and_not_said_every_time(
    mosquitto: MosquittoServer,
    caplog: pytest.LogCaptureFixture,
    uid: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two clients with one id whose connections each last longer than STABLE_S (here
    0.2 s; 10 s for real, as when backoff has grown): Mosquitto closes without 0x8E, so
    each loss looks like a healthy connection's end. It is named once and counted."""
    monkeypatch.setattr(mqttreport, "STABLE_S", 0.2)
    caplog.set_level(logging.INFO, logger="waystation.mqtt")
    sessions = _twins(mosquitto, f"same-{uid}", "ingest")
    try:
        wait_for(lambda: sum(s.connects for s in sessions) >= 40, "forty knocks", 60)
        assert any("same client id" in line for line in _warnings(caplog, "lost the broker"))
        # Each kind of loss said once per client (lost, lost again, flapping, takeover), each
        # with its "connected again": at most 16 lines, where once each knock took two.
        lines = _warnings(caplog, "")
        assert len(lines) <= 16, lines
    finally:
        for s in sessions:
            s.stop()
