"""A generic JSON webhook: the notices as data, with their text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from rules.outage.alerts import Notice
from rules.outage.channels.alertdata import alert_item
from rules.outage.channels.base import ChannelContext, Delivery
from rules.outage.channels.http import Http, url_secrets
from rules.outage.config import WebhookChannel
from rules.outage.messages import Renderer

__all__ = ["WebhookDelivery"]


class WebhookDelivery(Delivery[WebhookChannel]):
    """POSTs `{"source", "id", "title", "text", "notices": [{station, station_name, repeat,
    escalation, route, firing: [alert], resolved: [alert]}]}`, each alert in the one shape
    (`AlertItem`).

    `id` (also the `Idempotency-Key` header) is the same on every retry of the same
    message: a receiver that saw it already may drop it."""

    def __init__(self, config: WebhookChannel, renderer: Renderer, context: ChannelContext) -> None:
        super().__init__(config, renderer, context)
        self.http = Http(config.url, config.timeout.total_seconds(), config.headers)

    def secrets(self) -> Iterable[str | None]:
        return [*self.config.headers.values(), *url_secrets(self.config.url)]

    def send(self, notices: Sequence[Notice]) -> None:
        title, text = self.renderer.text(notices)
        items = [
            {
                "station": n.station,
                "station_name": self.renderer.station_name(n.station),
                "repeat": n.repeat,
                "escalation": n.escalation,
                "route": n.target,
                "firing": [alert_item(a, self.renderer).model_dump() for a in n.firing],
                "resolved": [alert_item(a, self.renderer).model_dump() for a in n.resolved],
            }
            for n in notices
        ]
        key = message_id(items)
        body = {"source": "waystation", "id": key, "title": title, "text": text, "notices": items}
        self.http.post(body, key=key)


def message_id(items: list[dict[str, Any]]) -> str:
    """The same for the same notices, whenever they are sent: a retry carries the same id."""
    canonical = json.dumps(items, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
