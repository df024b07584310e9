"""The rules settings file, the command line around it, and the channels' own behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from rules.outage.alerts import Alert, AlertBook, Notice
from rules.outage.channels.base import ChannelContext, ChannelSender, RateLimiter
from rules.outage.channels.dingtalk import dingtalk_sign
from rules.outage.channels.feishu import feishu_sign
from rules.outage.channels.webhook import WebhookDelivery
from rules.outage.config import RulesConfigError, WebhookChannel, load_rules_config, parse_rate
from rules.outage.detect import Rule
from rules.outage.messages import Renderer
from rules.outage.statedb import RulesState
from tests.helpers import station_registry, wait_for
from tests.rules_peers import HookServer


def test_the_sample_config_loads_once_its_secrets_are_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "--sample-config"]) == 0
    sample = tmp_path / "rules.yaml"
    sample.write_text(capsys.readouterr().out, encoding="utf-8")
    with pytest.raises(RulesConfigError) as info:
        load_rules_config(sample)
    message = str(info.value)
    assert "8 处错误 error(s)" in message
    assert "rules.yaml:29:10 channel 1: url\n    环境变量 DINGTALK_TOKEN 没有设置" in message
    assert "rules.yaml:30:13 channel 1: secret" in message
    assert "environment variable DINGTALK_SECRET is not set" in message
    for name in ("DINGTALK_TOKEN", "DINGTALK_SECRET", "WECOM_KEY", "WECOM_FENGYUN_KEY",
                 "FEISHU_HOOK", "FEISHU_SECRET", "SMTP_USER", "SMTP_PASSWORD"):  # fmt: skip
        monkeypatch.setenv(name, f"value-of-{name}")
    config = load_rules_config(sample)
    assert [c.type for c in config.channels] == [
        "dingtalk", "wecom", "wecom", "feishu", "webhook", "email", "mqtt", "log",
    ]  # fmt: skip
    assert [c.label for c in config.channels] == [
        "union-dingtalk", "xiaoge-wecom", "fengyun-wecom", "sanitation-feishu", "webhook",
        "email", "mqtt", "log",
    ]  # fmt: skip
    assert config.route is not None
    assert config.channels[0].url.endswith("access_token=value-of-DINGTALK_TOKEN")  # type: ignore[union-attr]
    assert config.timing.pending_for["door_silent"].total_seconds() == 600
    assert config.thresholds.reconnect_grace is None  # computed from the registry
    assert config.thresholds.monitoring_lost_after.total_seconds() == 60
    assert config.timing.notice_retry_for.total_seconds() == 24 * 3600


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "channels: [{type: pager, url: x}]",
            ":1:19 channel 1: type\n.*\n    'pager' is not one of: webhook, wecom",
        ),
        (
            "channels: [{type: dingtalk, url: x, rate: lots}]",
            ":1:34 channel 1: url\n.*\n    'x' is not a URL",
        ),
        (
            "channels: [{type: dingtalk, url: 'https://oapi.dingtalk.com/robot/send', rate: lots}]",
            "channel 1: rate\n.*\n    'lots' is not a rate",
        ),
        ("thresholds: {silent_intervals: 1}", "thresholds.silent_intervals\n.*\n    1 must be > 1"),
        ("timing: {group_wait: soon}", ":1:22 timing.group_wait\n.*\n    'soon' is not a duration"),
        (
            "timing: {pending_for: {device_silnet: 5m}}",
            ":1:24 timing.pending_for.device_silnet\n    没有名为 'device_silnet' 的规则\n.*\n    修正: 是不是 'device_silent'",
        ),
        ("language: fr", "language\n.*\n    'fr' is not one of: zh, en"),
        (
            "channels: [{type: email, host: h, sender: s, to: []}]",
            "channel 1: to\n    至少需要 1 项",
        ),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesConfigError, match=message):
        load_rules_config(path)


def test_a_bad_robot_url_is_named_without_its_key(tmp_path: Path) -> None:
    """The error goes to stderr, the journal under systemd: no robot key in it."""
    key = "693a91f6-SECRETKEY-1234"
    path = tmp_path / "rules.yaml"
    path.write_text(
        f"channels: [{{type: wecom, url: 'qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}'}}]",
        encoding="utf-8",
    )
    with pytest.raises(RulesConfigError, match="不是网址") as info:
        load_rules_config(path)
    assert key not in str(info.value)
    assert "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***" in str(info.value)


def test_rates() -> None:
    assert parse_rate("20/min") == (20, 60.0)
    assert parse_rate("5/s") == (5, 1.0)
    assert parse_rate("3/10s") == (3, 10.0)
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("0/s")


def test_sliding_window_limit() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 10.0, clock=lambda: now[0])
    assert limiter.wait_s() == 0
    limiter.take()
    now[0] = 1.0
    limiter.take()
    assert limiter.wait_s() == pytest.approx(9.25)  # the first send, 10 s and a margin later
    now[0] = 10.3
    assert limiter.wait_s() == 0


def test_signatures_match_published_examples() -> None:
    # Worked out once by hand with hmac/hashlib/base64 on the documented strings:
    # DingTalk HMAC(key=secret, msg="1700000000000\nSECxyz"), Feishu HMAC(key="1700000000\nsecret", msg="").
    assert dingtalk_sign("SECxyz", 1700000000000) == "0PUR1j8g85Xg3vlFV/UrEcxXfF5HpCAGzcjrNfyJoyg="
    assert feishu_sign("secret", 1700000000) == "fiWS2+gh28DOydAv7hzONH/mDn9+b1Y4Y5ivXWXy8vA="


def test_a_failing_webhook_is_retried_then_delivered(tmp_path: Path) -> None:
    registry = station_registry("s")
    renderer = Renderer(registry, "en")
    alert = Alert("device_fault:s:s-disp", Rule.DEVICE_FAULT, "s", "s-disp", 0, detail="E3")
    state = RulesState(tmp_path / "state.db")
    with HookServer() as hooks:
        hooks.fail["/hook"] = 2
        sender = ChannelSender(
            "webhook",
            WebhookDelivery(
                WebhookChannel(type="webhook", url=hooks.url("/hook")), renderer, ChannelContext()
            ),
            RateLimiter(100, 1.0),
            state,
        )
        sender.start()
        state.save(AlertBook(), [("webhook", Notice("s", (alert,), ()))])
        sender.wake()
        wait_for(lambda: hooks.on("/hook"), "the delivery after two failures", 20)
        sender.stop()
    assert sender.stats.retries == 2
    assert sender.stats.notices == 1
    assert state.notice_counts() == {}  # delivered, so no longer kept
    state.close()
    [hook] = hooks.on("/hook")
    assert hook.body["notices"][0]["firing"][0]["detail"] == "E3"
    assert 'device fault s-disp (code "E3")' in hook.body["text"]


def test_an_unset_variable_hides_no_other_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the secrets unset, only "not set" was listed; the real mistakes came a run later."""
    monkeypatch.delenv("WECOM_KEY", raising=False)
    monkeypatch.delenv("DINGTALK_SECRET", raising=False)
    path = tmp_path / "rules.yaml"
    path.write_text(
        "language: cn\n"
        "timing:\n"
        "  pending_for: {door_silnet: 10m}\n"
        "channels:\n"
        "  - type: wecom\n"
        "    url: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WECOM_KEY}\n"
        "  - type: dingtalk\n"
        "    url: oapi.dingtalk.com/robot/send\n"
        "    secret: ${DINGTALK_SECRET}\n"
        "    rate: 10 per second\n",
        "utf-8",
    )
    with pytest.raises(RulesConfigError) as info:
        load_rules_config(path)
    found = [(p.line, p.code) for p in info.value.problems]
    assert found == [
        (1, "not_allowed"),  # language: cn
        (3, "unknown_rule"),  # door_silnet
        (6, "env_not_set"),  # WECOM_KEY
        (8, "bad_url"),  # a URL without its scheme
        (9, "env_not_set"),  # DINGTALK_SECRET, and not also "the secret is empty"
        (10, "invalid"),  # the rate: 10 per second
    ]
    message = str(info.value)
    assert "6 处错误 error(s)" in message
    assert "environment variable WECOM_KEY is not set" in message
    assert "did you mean 'door_silent'?" in message


@pytest.mark.parametrize(("temp", "ok"), [("800", False), ("0", False), ("-5", False),
                                          ("100", True), ("45.5", True)])  # fmt: skip
def test_the_cold_water_threshold_is_a_water_temperature(
    tmp_path: Path, temp: str, ok: bool
) -> None:
    """800 °C passed, and every dispenser was always cold."""
    path = tmp_path / "rules.yaml"
    path.write_text(f"thresholds:\n  dispenser_min_temp_c: {temp}\n", "utf-8")
    if ok:
        assert load_rules_config(path).thresholds.dispenser_min_temp_c == float(temp)
        return
    with pytest.raises(RulesConfigError) as info:
        load_rules_config(path)
    [problem] = info.value.problems
    assert (problem.line, problem.code) == (2, "range")
    assert problem.what.en.startswith(temp)
