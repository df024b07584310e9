"""Where notifications go: one module per channel, each listed once in CHANNELS.

Every channel has the same shape (`base.Delivery`): built as
`Channel(config, renderer, context)` from its model in the rules settings,
the renderer (language, station names) and what the service shares (its MQTT
session, the clock); `send(notices)` delivers one message or raises
`DeliveryError` saying whether a retry may help. `factory.build_senders`
gives each configured channel a sender thread (queue, rate limit, retries).
The alerts a data channel carries have one shape (`alertdata.alert_item`).
A new channel is a module, its config model and a row here.
"""

from __future__ import annotations

from typing import Any

from rules.outage.channels.base import ChannelContext, Delivery
from rules.outage.channels.dingtalk import DingTalkDelivery
from rules.outage.channels.email import EmailDelivery
from rules.outage.channels.feishu import FeishuDelivery
from rules.outage.channels.log import LogDelivery
from rules.outage.channels.mqtt import MqttDelivery
from rules.outage.channels.webhook import WebhookDelivery
from rules.outage.channels.wecom import WeComDelivery
from rules.outage.config import ChannelConfig
from rules.outage.messages import Renderer

__all__ = ["CHANNELS", "build_delivery"]

# The `type:` of a channel in the rules settings → its class.
CHANNELS: dict[str, type[Delivery[Any]]] = {
    "webhook": WebhookDelivery,
    "wecom": WeComDelivery,
    "dingtalk": DingTalkDelivery,
    "feishu": FeishuDelivery,
    "email": EmailDelivery,
    "mqtt": MqttDelivery,
    "log": LogDelivery,
}


def build_delivery(
    config: ChannelConfig, renderer: Renderer, context: ChannelContext
) -> Delivery[Any]:
    return CHANNELS[config.type](config, renderer, context)
