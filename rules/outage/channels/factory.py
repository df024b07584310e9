"""Channels from the rules settings: a sender (queue, rate limit, retries) for each."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit

from rules.outage.alerts import Notice
from rules.outage.channels.base import ChannelSender, Delivery, NoticeQueue, RateLimiter
from rules.outage.channels.chat import (
    DingTalkDelivery,
    FeishuDelivery,
    WebhookDelivery,
    WeComDelivery,
)
from rules.outage.channels.email import EmailDelivery
from rules.outage.channels.mqtt import MqttDelivery
from rules.outage.config import (
    ChannelConfig,
    DingTalkChannel,
    EmailChannel,
    FeishuChannel,
    LogChannel,
    MqttChannel,
    WebhookChannel,
    WeComChannel,
    parse_rate,
)
from rules.outage.messages import Renderer
from waystation.mqttsession import MqttSession
from waystation.redact import register_secret

__all__ = ["build_senders"]

log = logging.getLogger("waystation.rules.notify")


class LogDelivery:
    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def send(self, notices: Sequence[Notice]) -> None:
        title, text = self.renderer.text(notices)
        log.warning("%s\n%s", title, text)


def _delivery(c: ChannelConfig, renderer: Renderer, client: MqttSession) -> Delivery:  # noqa: PLR0911 - one per channel type
    timeout = c.timeout.total_seconds()
    match c:
        case WebhookChannel():
            return WebhookDelivery(c.url, renderer, timeout, c.headers)
        case WeComChannel():
            return WeComDelivery(c.url, renderer, timeout)
        case DingTalkChannel():
            return DingTalkDelivery(c.url, c.secret, renderer, timeout)
        case FeishuChannel():
            return FeishuDelivery(c.url, c.secret, renderer, timeout)
        case EmailChannel():
            return EmailDelivery(c, renderer)
        case MqttChannel():
            return MqttDelivery(client, c.prefix, renderer)
        case LogChannel():
            return LogDelivery(renderer)
    raise AssertionError(c)  # pragma: no cover - the union is exhaustive


def _secrets(c: ChannelConfig) -> list[str | None]:
    """What of a channel's settings must never show in a log line (beyond URL shapes)."""
    match c:
        case WebhookChannel():
            url = urlsplit(c.url)
            return [*c.headers.values(), url.password, *(v for _, v in parse_qsl(url.query))]
        case WeComChannel() | DingTalkChannel() | FeishuChannel():
            url = urlsplit(c.url)
            token = url.path.rsplit("/", 1)[-1] if "/hook/" in url.path else None
            return [*(v for _, v in parse_qsl(url.query)), token, getattr(c, "secret", None)]
        case EmailChannel():
            return [c.password]
    return []


def build_senders(
    channels: Sequence[ChannelConfig],
    renderer: Renderer,
    client: MqttSession,
    queue: NoticeQueue,
    *,
    retry_for_s: float,
    failing_after_s: float,
) -> list[ChannelSender]:
    """A sender per channel, labels made unique (`webhook`, `webhook-2`): notices wait by label."""
    senders = []
    seen: dict[str, int] = {}
    for c in channels:
        for secret in _secrets(c):
            register_secret(secret)
        seen[c.label] = seen.get(c.label, 0) + 1
        label = c.label if seen[c.label] == 1 else f"{c.label}-{seen[c.label]}"
        if "max_attempts" in c.model_fields_set:
            log.warning(
                "channel %s: max_attempts is no longer used: notices are retried until "
                "delivered (timing.notice_retry_for)",
                label,
            )
        count, period = parse_rate(c.rate)
        senders.append(
            ChannelSender(
                label,
                _delivery(c, renderer, client),
                RateLimiter(count, period),
                queue,
                needs_broker=isinstance(c, MqttChannel),
                retry_for_s=retry_for_s,
                failing_after_s=failing_after_s,
            )
        )
    return senders
