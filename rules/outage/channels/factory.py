"""Channels from the rules settings: a sender (queue, rate limit, retries) for each."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import paho.mqtt.client as mqtt

from rules.outage.alerts import Notice
from rules.outage.channels.base import ChannelSender, Delivery, RateLimiter
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

__all__ = ["build_senders"]

log = logging.getLogger("waystation.rules.notify")


class LogDelivery:
    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def send(self, notices: Sequence[Notice]) -> None:
        title, text = self.renderer.text(notices)
        log.warning("%s\n%s", title, text)


def _delivery(c: ChannelConfig, renderer: Renderer, client: mqtt.Client) -> Delivery:  # noqa: PLR0911 - one per channel type
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


def build_senders(
    channels: Sequence[ChannelConfig], renderer: Renderer, client: mqtt.Client
) -> list[ChannelSender]:
    senders = []
    for c in channels:
        count, period = parse_rate(c.rate)
        senders.append(
            ChannelSender(
                c.label,
                _delivery(c, renderer, client),
                RateLimiter(count, period),
                max_attempts=c.max_attempts,
            )
        )
    return senders
