"""`alerts/{station}/{rule}`: retained while the rule fires at the station, cleared when not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rules.outage.alerts import Alert, Notice
from rules.outage.channels.alertdata import alert_item
from rules.outage.channels.base import ChannelContext, Delivery, DeliveryError
from rules.outage.config import MqttChannel
from rules.outage.messages import Renderer
from waystation.contract import alerts_json, alerts_topic
from waystation.mqttreasons import Packet, hint, is_failure, reason_name
from waystation.mqttsession import PublishRefused

__all__ = ["MqttDelivery"]

# PUBACK refusals that no retry changes, given up like a webhook's 4xx: not authorized
# (the account may not write the prefix), topic name invalid, packet too large, payload
# format invalid. Others (unspecified, implementation specific, quota exceeded) may pass.
FINAL = {0x87, 0x90, 0x95, 0x99}


class MqttDelivery(Delivery[MqttChannel]):
    """On the service's own session: while it is down its notices wait, then go out in order."""

    needs_broker: ClassVar[bool] = True

    def __init__(self, config: MqttChannel, renderer: Renderer, context: ChannelContext) -> None:
        if context.session is None:
            raise ValueError("the mqtt channel publishes on the rules service's MQTT session")
        super().__init__(config, renderer, context)
        self.session = context.session

    def _payload(self, station: str, firing: list[Alert]) -> str:
        alerts = [alert_item(a, self.renderer) for a in firing]
        return alerts_json(station, self.renderer.station_name(station), alerts)

    def send(self, notices: Sequence[Notice]) -> None:
        session = self.session
        if not session.connected:
            raise DeliveryError("not connected to the broker", retry=True)
        for notice in notices:
            rules = {a.rule for a in (*notice.firing, *notice.resolved)}
            for rule in sorted(rules):
                firing = [a for a in notice.still_firing if a.rule is rule]
                topic = alerts_topic(notice.station, rule, self.config.prefix)
                # An empty retained payload deletes the retained message: resolved.
                payload = self._payload(notice.station, firing) if firing else b""
                self._publish(topic, payload)

    def _publish(self, topic: str, payload: str | bytes) -> None:
        """Delivered once the broker's PUBACK says so; a refusal or no answer is a failure."""
        timeout_s = self.config.timeout.total_seconds()
        try:
            code = self.session.publish_acked(topic, payload, timeout_s, retain=True)
        except PublishRefused as exc:
            raise DeliveryError(f"MQTT publish to {topic}: {exc}", retry=True) from exc
        if code is None:
            raise DeliveryError(
                f"MQTT publish to {topic}: no acknowledgement from the broker within "
                f"{timeout_s:.0f} s",
                retry=True,
            )
        if is_failure(code):
            tip = hint(code)
            raise DeliveryError(
                f"the broker refused the publish to {topic}: "
                f"{reason_name(code, Packet.PUBACK)}{f' ({tip})' if tip else ''}",
                retry=code not in FINAL,
            )
