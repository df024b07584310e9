"""What every engine under the session adapter must do beyond the log promises.

TLS with a user and password, an untrusted certificate named, the receive
window (MQTT 5), persistent sessions on 5 and 3.1.1, and `ack_many`
refusing an old connection's packet ids. Each on a real Mosquitto, each
against both engines. (Mosquitto 2.0's ACL file never refuses a SUBSCRIBE:
it grants it and filters on delivery, so the refusal path is tested on the
codec.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.localservers import MosquittoServer
from tests.helpers import MqttSpy, wait_for
from tests.test_mqtt_security import secure_broker  # noqa: F401 - a fixture
from tests.tls import make_ca_and_cert
from waystation.mqttsession import (
    Engine,
    InboundMessage,
    MqttSession,
    SessionCallbacks,
    SessionOptions,
    open_session,
)
from waystation.settings import MqttSettings, MqttVersion
from waystation.socketsession import READ_CHUNK

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("quick_reconnects")]


class Inbox:
    """What a session received, by batch, with each batch's connection generation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes, int, int]] = []  # topic, payload, mid, generation

    def on_batch(self, msgs: Sequence[InboundMessage], generation: int) -> None:
        with self.lock:
            self.messages += [(m.topic, bytes(m.payload), m.mid, generation) for m in msgs]

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [m[1] for m in self.messages]


def _session(
    settings: MqttSettings, engine: Engine, inbox: Inbox, client_id: str, **options: object
) -> MqttSession:
    return open_session(
        settings,
        SessionOptions(client_id=client_id, label="ingest", engine=engine, **options),  # type: ignore[arg-type]
        SessionCallbacks(on_batch=inbox.on_batch),
    )


def test_tls_with_a_user_and_password(
    secure_broker: tuple[MosquittoServer, Path],  # noqa: F811 - the imported fixture
    engine: Engine,
) -> None:
    broker, ca = secure_broker
    url = f"mqtts://reader:r3ad@127.0.0.1:{broker.port}"
    settings = MqttSettings.from_url(url, ca)
    inbox = Inbox()
    session = _session(settings, engine, inbox, "reader", subscriptions=("t/#",))
    session.start()
    try:
        assert session.wait_subscribed(10)
        with MqttSpy(settings, "reader-pub", []) as pub:
            pub.client.username_pw_set("st-tls-gw", "s3cret")
            for n in range(200):  # more than one TLS record's worth
                pub.publish(f"t/{n}", "x" * 500)
        wait_for(lambda: len(inbox.payloads()) == 200, "200 messages over TLS")
    finally:
        session.stop()


def test_an_untrusted_certificate_is_named(
    secure_broker: tuple[MosquittoServer, Path],  # noqa: F811
    tmp_path: Path,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, _ = secure_broker
    (tmp_path / "other").mkdir()
    other_ca, _, _ = make_ca_and_cert(tmp_path / "other")
    settings = MqttSettings.from_url(f"mqtts://reader:r3ad@127.0.0.1:{broker.port}", other_ca)
    caplog.set_level(logging.WARNING, logger="waystation.mqtt")
    session = _session(settings, engine, Inbox(), "reader")
    session.start()
    try:
        wait_for(
            lambda: any("unreachable" in r.getMessage() for r in caplog.records),
            "the unreachable warning",
            10,
        )
        [line] = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
        assert "CERTIFICATE_VERIFY_FAILED" in line
        assert not session.connected
    finally:
        session.stop()


def test_the_receive_window_holds_until_acknowledged(
    mosquitto: MosquittoServer, engine: Engine, uid: str
) -> None:
    settings = MqttSettings.from_url(mosquitto.url)
    inbox = Inbox()
    session = _session(
        settings,
        engine,
        inbox,
        f"win-{uid}",
        subscriptions=(f"w/{uid}/#",),
        receive_maximum=5,
        session_expiry_s=60,
        manual_ack=True,
    )
    session.start()
    try:
        assert session.wait_subscribed(10)
        with MqttSpy(settings, f"pub-{uid}", []) as pub:
            for n in range(20):
                pub.publish(f"w/{uid}/{n}", str(n))
            # The broker sends the window and waits: a probe behind it shows it waits.
            wait_for(lambda: len(inbox.payloads()) >= 5, "the first window")
            pub.publish(f"w/{uid}/probe", "probe")
            with MqttSpy(settings, f"probe-{uid}", [f"w/{uid}/probe"]) as probe:
                pub.publish(f"w/{uid}/probe", "probe2")
                wait_for(lambda: probe.messages, "the probe's copy: the broker has sent on")
            assert len(inbox.payloads()) == 5
            with inbox.lock:
                first = list(inbox.messages)
            generation = first[0][3]
            assert session.ack_many(generation, [m[2] for m in first])
            wait_for(lambda: len(inbox.payloads()) >= 10, "the next window after the acks")
    finally:
        session.stop()


@pytest.mark.parametrize("version", list(MqttVersion))
def test_a_persistent_session_keeps_what_arrives_while_away(
    mosquitto: MosquittoServer, engine: Engine, version: MqttVersion, uid: str
) -> None:
    settings = MqttSettings.from_url(mosquitto.url)
    options: dict[str, object] = {
        "subscriptions": (f"p/{uid}/#",),
        "session_expiry_s": 600,
        "version": version,
    }
    first = _session(settings, engine, Inbox(), f"keep-{uid}", **options)
    first.start()
    assert first.wait_subscribed(10)
    first.stop()
    with MqttSpy(settings, f"pub-{uid}", []) as pub:
        for n in range(10):
            pub.publish(f"p/{uid}/{n}", str(n))
    inbox = Inbox()
    present: list[bool] = []
    again = open_session(
        settings,
        SessionOptions(client_id=f"keep-{uid}", label="ingest", engine=engine, **options),  # type: ignore[arg-type]
        SessionCallbacks(on_batch=inbox.on_batch, on_connected=present.append),
    )
    again.start()
    try:
        wait_for(lambda: len(inbox.payloads()) == 10, "the ten kept messages")
        assert sorted(inbox.payloads(), key=int) == [str(n).encode() for n in range(10)]
        assert present == [True]
    finally:
        again.stop()


def test_an_old_connection_is_never_acknowledged_on_a_new_one(
    own_mosquitto: MosquittoServer, engine: Engine, uid: str
) -> None:
    settings = MqttSettings.from_url(own_mosquitto.url)
    inbox = Inbox()
    session = _session(
        settings,
        engine,
        inbox,
        f"gen-{uid}",
        subscriptions=(f"g/{uid}/#",),
        session_expiry_s=600,
        manual_ack=True,
    )
    session.start()
    try:
        assert session.wait_subscribed(10)
        with MqttSpy(settings, f"pub-{uid}", []) as pub:
            pub.publish(f"g/{uid}/a", "a")
        wait_for(lambda: inbox.payloads() == [b"a"], "the message")
        old_generation = inbox.messages[0][3]
        old_mid = inbox.messages[0][2]
        own_mosquitto.restart()
        assert session.wait_subscribed(15)
        wait_for(lambda: len(inbox.payloads()) == 2, "the unacknowledged message again")
        assert inbox.messages[1][3] != old_generation
        assert not session.ack_many(old_generation, [old_mid])
        assert session.ack_many(inbox.messages[1][3], [inbox.messages[1][2]])
    finally:
        session.stop()


def test_the_socket_engine_bounds_what_it_holds_whatever_the_broker_sends(
    mosquitto: MosquittoServer, uid: str
) -> None:
    """Mosquitto 2.0.11 sends a resumed session's backlog past the receive window once
    acknowledgements flow; the engine stops reading at its window, so at most the window
    and one read are ever held."""
    settings = MqttSettings.from_url(mosquitto.url)
    options: dict[str, object] = {
        "subscriptions": (f"b/{uid}/#",),
        "session_expiry_s": 600,
        "receive_maximum": 100,
        "manual_ack": True,
    }
    first = _session(settings, Engine.SOCKET, Inbox(), f"bound-{uid}", **options)
    first.start()
    assert first.wait_subscribed(10)
    first.stop()
    with MqttSpy(settings, f"pub-{uid}", []) as pub:
        for n in range(3000):
            pub.publish(f"b/{uid}/x", b"%04d" % n + b"x" * 996)
    held: list[tuple[int, int]] = []
    lock = threading.Lock()
    peak = [0]

    def on_batch(msgs: Sequence[InboundMessage], generation: int) -> None:
        with lock:
            held.extend((m.mid, generation) for m in msgs)
            peak[0] = max(peak[0], len(held))

    session = open_session(
        settings,
        SessionOptions(client_id=f"bound-{uid}", label="ingest", engine=Engine.SOCKET, **options),  # type: ignore[arg-type]
        SessionCallbacks(on_batch=on_batch),
    )
    session.start()
    acked = 0
    try:
        deadline = time.monotonic() + 60
        while acked < 3000 and time.monotonic() < deadline:
            with lock:
                batch, held[:] = held[:50], held[50:]
            if batch:
                assert session.ack_many(batch[0][1], [mid for mid, _ in batch])
                acked += len(batch)
            else:
                time.sleep(0.005)
    finally:
        session.stop()
    assert acked == 3000
    one_read = READ_CHUNK // 1000  # a read holds at most this many of these packets
    assert peak[0] <= 100 + one_read, peak[0]


def test_a_callback_that_raises_is_logged_and_the_session_goes_on(
    mosquitto: MosquittoServer, engine: Engine, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's callback runs on the network thread: what it raises must not stop it."""
    settings = MqttSettings.from_url(mosquitto.url)
    seen: list[bytes] = []

    def on_batch(msgs: Sequence[InboundMessage], _generation: int) -> None:
        seen.extend(bytes(m.payload) for m in msgs)
        if len(seen) == 1:
            raise RuntimeError("a broken handler")

    session = open_session(
        settings,
        SessionOptions(
            client_id=f"raise-{uid}", label="ingest", engine=engine, subscriptions=(f"r/{uid}/#",)
        ),
        SessionCallbacks(on_batch=on_batch),
    )
    session.start()
    try:
        assert session.wait_subscribed(10)
        with (
            caplog.at_level(logging.ERROR, "waystation.mqtt"),
            MqttSpy(settings, f"p-{uid}", []) as pub,
        ):
            pub.publish(f"r/{uid}/1", "1")
            wait_for(lambda: seen == [b"1"], "the first message")
            pub.publish(f"r/{uid}/2", "2")
            wait_for(lambda: seen == [b"1", b"2"], "the second message, after the first raised")
        assert session.connected
        assert "ingest: error in a session callback" in caplog.text
    finally:
        session.stop()
