"""A generic JSON webhook: the notices as data, with their text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rules.outage.alerts import Notice
from rules.outage.channels.alertdata import alert_item
from rules.outage.channels.base import ChannelContext, Delivery
from rules.outage.channels.http import Http, url_secrets
from rules.outage.config import WebhookChannel
from rules.outage.messages import Renderer

__all__ = ["WebhookDelivery"]


class WebhookDelivery(Delivery[WebhookChannel]):
    """POSTs `{"source", "title", "text", "notices": [{station, station_name, repeat,
    firing: [alert], resolved: [alert]}]}`, each alert in the one shape (`AlertItem`)."""

    def __init__(self, config: WebhookChannel, renderer: Renderer, context: ChannelContext) -> None:
        super().__init__(config, renderer, context)
        self.http = Http(config.url, config.timeout.total_seconds(), config.headers)

    def secrets(self) -> Iterable[str | None]:
        return [*self.config.headers.values(), *url_secrets(self.config.url)]

    def send(self, notices: Sequence[Notice]) -> None:
        title, text = self.renderer.text(notices)
        self.http.post({
            "source": "waystation",
            "title": title,
            "text": text,
            "notices": [
                {
                    "station": n.station,
                    "station_name": self.renderer.station_name(n.station),
                    "repeat": n.repeat,
                    "firing": [alert_item(a, self.renderer).model_dump() for a in n.firing],
                    "resolved": [alert_item(a, self.renderer).model_dump() for a in n.resolved],
                }
                for n in notices
            ],
        })  # fmt: skip
