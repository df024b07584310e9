"""One contract, every channel: each row of CHANNELS against its real peer.

After FastStream's broker suites: the same tests run for every channel, each
bound to a real peer (`tests.rules_peers`): the HTTP hook server playing the
webhook and the WeCom, DingTalk and Feishu robots, an SMTP server with
STARTTLS and a login, a Mosquitto of the test's own, and the log. What a
channel cannot do (a log cannot be refused) is declared by its peer, and a
channel without a peer fails the suite.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest

from app.localservers import MosquittoServer
from rules.outage.alerts import Alert, AlertBook, AlertState, Notice
from rules.outage.channels import CHANNELS, build_delivery, http
from rules.outage.channels.base import ChannelContext, Delivery, DeliveryError
from rules.outage.channels.factory import build_senders
from rules.outage.config import ChannelConfig, RulesConfig
from rules.outage.detect import Rule
from rules.outage.messages import Renderer
from rules.outage.statedb import RulesState
from tests.helpers import MqttSpy, station_registry, wait_for
from tests.rules_helpers import SMTP_PASSWORD
from tests.rules_peers import HookServer, SilentServer, SmtpPeer
from tests.tls import make_ca_and_cert
from waystation.contract import AlertItem
from waystation.mqttsession import SessionOptions, open_session
from waystation.redact import redact
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration

STATION = "chan-1"
DEVICE = f"{STATION}-disp"
SECRET = "contract-test-secret-value"  # made up, for the redaction check
TIMEOUT_S = 1.0


@dataclass
class Peer:
    """A channel's settings pointed at its real peer, and the peer's side of things."""

    settings: dict[str, Any]
    received: Callable[[], list[str]]  # every message so far, as text, oldest first
    secrets: list[str] = field(default_factory=list)  # what must be masked once it is built
    says_resolved: Callable[[str], bool] = lambda m: "已恢复" in m
    alerts: Callable[[str], list[dict[str, Any]]] | None = None  # a data channel's alert objects
    fail: Callable[[], None] | None = None  # fail for a while (until `mend`)
    mend: Callable[[], None] = lambda: None
    refuse: Callable[[], None] | None = None  # refuse for good (a 4xx, a wrong login)
    hang: Callable[[], None] | None = None  # never answer
    context: ChannelContext = field(default_factory=ChannelContext)

    def config(self) -> ChannelConfig:
        document = {"channels": [{**self.settings, "timeout": f"{TIMEOUT_S}s"}]}
        return RulesConfig.model_validate(document).channels[0]


def _http_peer(hooks: HookServer, name: str, path: str, query: str = "") -> Peer:
    def received() -> list[str]:
        return [json.dumps(h.body, ensure_ascii=False) for h in hooks.on(path)]

    def fail() -> None:
        hooks.fail_until[path] = time.monotonic() + 3600

    def mend() -> None:
        hooks.fail_until[path] = 0

    def hang() -> None:
        hooks.hang_until[path] = time.monotonic() + 3600

    def refuse() -> None:  # the webhook: a 4xx; a robot: HTTP 200 with an error code
        robot_error = {"errcode": 310000, "code": 19021, "errmsg": "keywords not in content"}
        hooks.answer[path] = (400, {}) if name == "webhook" else (200, robot_error)

    settings: dict[str, Any] = {"type": name, "url": hooks.url(path + query)}
    secrets = [query.split("=", 1)[1]] if query else []
    if name in ("dingtalk", "feishu"):
        settings["secret"] = SECRET
        secrets.append(SECRET)
    if name == "webhook":
        settings["headers"] = {"Authorization": f"Bearer {SECRET}"}
        secrets.append(f"Bearer {SECRET}")
    alerts = None
    if name == "webhook":

        def alerts(m: str) -> list[dict[str, Any]]:
            body = json.loads(m)
            return [a for n in body["notices"] for a in (*n["firing"], *n["resolved"])]

    return Peer(
        settings, received, secrets, alerts=alerts, fail=fail, mend=mend, refuse=refuse, hang=hang
    )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """The mqtt channel's broker, which its failure test stops and starts again."""
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The SMTP peer's CA, certificate and key."""
    return make_ca_and_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=sorted(CHANNELS))
def peer(request: pytest.FixtureRequest, uid: str) -> Iterator[Peer]:  # noqa: C901 - one branch a channel
    name: str = request.param
    if name in ("webhook", "wecom", "dingtalk", "feishu"):
        query = {"wecom": "?key=wecom-key-123456", "dingtalk": "?access_token=ding-token-123"}
        with HookServer() as hooks:
            yield _http_peer(hooks, name, f"/{name}", query.get(name, ""))
    elif name == "email":
        ca, cert, key = request.getfixturevalue("tls_files")
        with SmtpPeer(cert, key, login=("alerts", SMTP_PASSWORD)) as smtp, SilentServer() as mute:
            settings = {
                "type": "email", "host": "127.0.0.1", "port": smtp.port, "ca_file": str(ca),
                "sender": "alerts@waystation.test", "to": ["oncall@waystation.test"],
                "username": "alerts", "password": SMTP_PASSWORD,
            }  # fmt: skip

            def received() -> list[str]:
                return [f"{m['Subject']}\n{_body(m)}" for m in smtp.inbox.messages]

            def fail() -> None:
                smtp.inbox.answer = "451 4.3.0 try again later"

            def mend() -> None:
                smtp.inbox.answer = None

            def refuse() -> None:
                settings["password"] = "not-the-password"  # a wrong one

            def hang() -> None:
                settings["port"] = mute.port

            yield Peer(
                settings, received, [SMTP_PASSWORD],
                fail=fail, mend=mend, refuse=refuse, hang=hang,
            )  # fmt: skip
    elif name == "mqtt":
        broker: MosquittoServer = request.getfixturevalue("broker")
        mqtt = MqttSettings.from_url(broker.url)
        session = open_session(mqtt, SessionOptions(client_id=f"rules-{uid}", label="rules"))
        session.start()
        assert session.wait_connected(10)
        prefix = f"alerts-{uid}"  # retained alerts of one test never reach another's spy
        try:
            with MqttSpy(mqtt, f"spy-{uid}", [f"{prefix}/{STATION}/#"]) as spy:

                def fail() -> None:  # the broker goes away
                    broker.stop()
                    wait_for(lambda: not session.connected, "the session to notice")

                def mend() -> None:
                    broker.start()
                    assert session.wait_connected(30)

                yield Peer(
                    {"type": "mqtt", "prefix": prefix},
                    lambda: [m.payload.decode() for m in spy.messages],
                    says_resolved=lambda m: m == "",  # the retained alert cleared
                    alerts=lambda m: json.loads(m)["alerts"],
                    fail=fail,
                    mend=mend,
                    context=ChannelContext(session),
                )
        finally:
            session.stop()
    elif name == "log":
        caplog: pytest.LogCaptureFixture = request.getfixturevalue("caplog")
        with caplog.at_level(logging.WARNING, logger="waystation.rules.notify"):
            yield Peer(
                {"type": "log"},
                lambda: [r.getMessage() for r in caplog.records if r.name.endswith("notify")],
            )
    else:  # pragma: no cover - the suite is incomplete
        pytest.fail(f"channel {name!r} has no peer in the contract suite")


def _body(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    return str(message.get_content())


def _delivery(peer: Peer) -> Delivery[Any]:
    renderer = Renderer(station_registry(STATION), "zh")
    return build_delivery(peer.config(), renderer, peer.context)


def _alert(state: AlertState = AlertState.FIRING) -> Alert:
    resolved = 1_761_955_500_000 if state is AlertState.RESOLVED else None
    return Alert(f"device_fault:{STATION}:{DEVICE}", Rule.DEVICE_FAULT, STATION, DEVICE,
                 1_761_955_200_000, state=state, detail="E3", resolved_ms=resolved)  # fmt: skip


FIRING = Notice(STATION, (_alert(),), ())
RESOLVED = Notice(STATION, (), (_alert(AlertState.RESOLVED),))


def _send_fails(delivery: Delivery[Any]) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        delivery.send([FIRING])
    return info.value


def test_every_channel_is_bound_to_the_suite(peer: Peer) -> None:
    """Built from the settings as the service builds it, its secrets masked from then on."""
    delivery = _delivery(peer)
    assert type(delivery) is CHANNELS[peer.settings["type"]]
    assert delivery.needs_broker == (peer.settings["type"] == "mqtt")
    for secret in peer.secrets:
        assert secret not in redact(f"logged: {secret}")


def test_a_firing_then_its_resolution(peer: Peer) -> None:
    delivery = _delivery(peer)
    delivery.send([FIRING])
    wait_for(lambda: len(peer.received()) == 1, "the firing notice")
    [firing] = peer.received()
    assert "测试驿站" in firing  # the station by its registry name
    assert "E3" in firing  # what the alert says
    assert not peer.says_resolved(firing)
    delivery.send([RESOLVED])
    wait_for(lambda: len(peer.received()) == 2, "the resolved notice")
    assert peer.says_resolved(peer.received()[1])


def test_a_data_channel_sends_the_one_alert_shape(peer: Peer) -> None:
    if peer.alerts is None:
        assert peer.settings["type"] not in ("webhook", "mqtt")
        return  # a text channel: the text is its shape
    _delivery(peer).send([FIRING])
    wait_for(peer.received, "the notice")
    [alert] = peer.alerts(peer.received()[0])
    assert set(alert) == set(AlertItem.model_fields)
    assert AlertItem.model_validate(alert).detail == "E3"


def test_a_failure_that_may_pass_is_retried_and_passes(peer: Peer) -> None:
    if peer.fail is None:
        assert peer.settings["type"] == "log"  # the log does not fail
        return
    delivery = _delivery(peer)
    peer.fail()
    assert _send_fails(delivery).retry
    peer.mend()
    delivery.send([FIRING])
    wait_for(peer.received, "the notice once the peer is back")


def test_a_refusal_is_given_up(peer: Peer) -> None:
    if peer.refuse is None:
        assert peer.settings["type"] in ("log", "mqtt")  # nothing to refuse a notice with
        return
    peer.refuse()
    error = _send_fails(_delivery(peer))
    assert not error.retry
    for secret in peer.secrets:
        assert secret not in str(error)


def test_a_hung_peer_costs_one_timeout(peer: Peer) -> None:
    if peer.hang is None:
        assert peer.settings["type"] in ("log", "mqtt")  # nothing to wait for: queued or local
        return
    peer.hang()
    delivery = _delivery(peer)
    started = time.monotonic()
    assert _send_fails(delivery).retry
    # A connect and a read timeout at most, with slack for a loaded machine.
    assert time.monotonic() - started < 2 * TIMEOUT_S + 3


def test_a_broker_refusing_the_mqtt_channels_publish_is_a_failed_delivery(
    tmp_path: Path, uid: str
) -> None:
    """The broker's PUBACK is the proof: an account that may not write the prefix fails."""
    acl = tmp_path / "acl"
    # Anonymous clients may read the alerts, and write only the spy's marker topic.
    acl.write_text(f"topic read alerts/#\ntopic readwrite alerts/{STATION}/marker\n")
    with MosquittoServer(tmp_path / "mosquitto", f"acl_file {acl}\n") as broker:
        mqtt = MqttSettings.from_url(broker.url)
        session = open_session(mqtt, SessionOptions(client_id=f"rules-{uid}", label="rules"))
        session.start()
        try:
            assert session.wait_connected(10)
            with MqttSpy(mqtt, f"spy-{uid}", [f"alerts/{STATION}/#"]) as spy:
                peer = Peer({"type": "mqtt"}, list, context=ChannelContext(session))
                error = _send_fails(_delivery(peer))
                assert not error.retry, "a refusal for good, kept and counted like a 4xx"
                assert "Not authorized (0x87)" in str(error)
                assert f"alerts/{STATION}/device_fault" in str(error)
                spy.caught_up(f"alerts/{STATION}/marker")  # what the broker took has arrived
                assert not [m for m in spy.messages if m.payload]
        finally:
            session.stop()


def test_a_webhook_slower_than_the_timeout_gets_the_same_id_and_a_slow_retry(
    tmp_path: Path,
    hooks: HookServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """It took the message but answered after the read timeout: the retry may be a
    duplicate, so after the first few it waits long (here from the first, 4 s) and
    carries the same id to be dropped by."""
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(http, "QUICK_READ_TIMEOUTS", 0)  # slow from the first
    monkeypatch.setattr(http, "READ_TIMEOUT_RETRY_S", 4.0)
    hooks.slow["/slow"] = 2 * TIMEOUT_S
    config = RulesConfig.model_validate(
        {"channels": [{"type": "webhook", "url": hooks.url("/slow"), "timeout": f"{TIMEOUT_S}s"}]}
    )
    state = RulesState(tmp_path / "state.db")
    renderer = Renderer(station_registry(STATION), "zh")
    [sender] = build_senders(config.channels, renderer, ChannelContext(), state,
                             retry_for_s=3600, failing_after_s=3600)  # fmt: skip
    state.save(AlertBook(), [(sender.label, FIRING)])
    sender.start()
    try:
        sender.wake()
        wait_for(lambda: len(hooks.on("/slow")) >= 2, "the message and its retry", 20)
        first, second = hooks.on("/slow")[:2]
        assert first.body["id"] == second.body["id"], "a retry carries the same id"
        assert second.at - first.at >= 4.0, "the retry after a read timeout waits long"
        said = [r.getMessage() for r in caplog.records if "may arrive twice" in r.getMessage()]
        assert len(said) == 1, said
        hooks.slow["/slow"] = 0  # the peer answers in time again
        wait_for(lambda: sender.stats.messages == 1, "the delivery counted", 20)
        wait_for(
            lambda: state.notice_counts().get(sender.label, (0, 0)) == (0, 0), "nothing waiting"
        )
    finally:
        sender.stop()
        state.close()


def test_a_robot_message_stays_under_its_size_limit_and_no_station_is_lost(
    tmp_path: Path, hooks: HookServer
) -> None:
    """WeCom refuses markdown over 4096 bytes (errcode 40058) and the whole message with
    it: the stations go in several messages, and one station's long history is cut."""
    config = RulesConfig.model_validate({"channels": [{"type": "wecom", "url": hooks.url("/w")}]})
    state = RulesState(tmp_path / "state.db")
    renderer = Renderer(station_registry(STATION), "zh")
    [sender] = build_senders(config.channels, renderer, ChannelContext(), state,
                             retry_for_s=3600, failing_after_s=3600)  # fmt: skip
    stations = [f"{STATION}-{n:02d}" for n in range(20)]

    def alert(station: str, n: int, state: AlertState = AlertState.FIRING) -> Alert:
        resolved = 1_761_955_500_000 + n if state is AlertState.RESOLVED else None
        return Alert(f"device_silent:{station}:{station}-d{n}", Rule.DEVICE_SILENT, station,
                     f"{station}-d{n}", 1_761_955_200_000 + n, state=state,
                     detail="a rather long detail that an operator wrote into the registry",
                     resolved_ms=resolved)  # fmt: skip

    notices = [Notice(s, tuple(alert(s, n) for n in range(3)), ()) for s in stations]
    # One station whose device flapped 60 times while the channel was down.
    flapping = f"{STATION}-flap"
    notices.append(Notice(flapping, (), tuple(alert(flapping, n, AlertState.RESOLVED)
                                              for n in range(60))))  # fmt: skip
    state.save(AlertBook(), [(sender.label, n) for n in notices])
    sender.start()
    try:
        sender.wake()
        wait_for(lambda: state.notice_counts().get(sender.label, (0, 0)) == (0, 0),
                 "every notice sent", 30)  # fmt: skip
    finally:
        sender.stop()
        state.close()
    contents = [h.body["markdown"]["content"] for h in hooks.on("/w")]
    assert len(contents) > 1, "more than one message"
    assert all(len(c.encode()) <= 4096 for c in contents), [len(c.encode()) for c in contents]
    for s in [*stations, flapping]:
        assert any(s in c for c in contents), f"{s} never sent"
    [cut] = [c for c in contents if flapping in c]
    assert "条未列出" in cut
