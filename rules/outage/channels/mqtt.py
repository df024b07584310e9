"""`alerts/{station}/{rule}`: retained while the rule fires at the station, cleared when not."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rules.outage.alerts import Alert, Notice
from rules.outage.channels.base import DeliveryError
from rules.outage.messages import Renderer
from waystation.contract import alerts_topic
from waystation.mqttsession import MqttSession, PublishRefused

__all__ = ["MqttDelivery"]


class MqttDelivery:
    """Needs the broker: while the session is down its notices wait, then go out in order."""

    def __init__(self, client: MqttSession, prefix: str, renderer: Renderer) -> None:
        self.client = client
        self.prefix = prefix
        self.renderer = renderer

    def _payload(self, station: str, firing: list[Alert]) -> str:
        return json.dumps(
            {
                "v": 1,
                "station": station,
                "station_name": self.renderer.station_name(station),
                "alerts": [
                    {
                        "key": a.key,
                        "device": a.device,
                        "severity": a.severity,
                        "since": a.since_ms,
                        "detail": a.detail,
                        "text": self.renderer.alert_line(a),
                    }
                    for a in firing
                ],
            },
            ensure_ascii=False,
        )

    def send(self, notices: Sequence[Notice]) -> None:
        if not self.client.connected:
            raise DeliveryError("not connected to the broker", retry=True)
        for notice in notices:
            rules = {a.rule for a in (*notice.firing, *notice.resolved)}
            for rule in sorted(rules):
                firing = [a for a in notice.still_firing if a.rule is rule]
                topic = alerts_topic(notice.station, rule, self.prefix)
                # An empty retained payload deletes the retained message: resolved.
                payload = self._payload(notice.station, firing) if firing else b""
                try:
                    self.client.publish(topic, payload, qos=1, retain=True)
                except PublishRefused as exc:
                    raise DeliveryError(f"MQTT publish to {topic}: {exc}", retry=True) from exc
