"""A WeCom (企业微信) group robot: markdown; the hook's `key` is its secret."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from rules.outage.alerts import Notice
from rules.outage.channels.base import ChannelContext, Delivery
from rules.outage.channels.http import Http, check_code, url_secrets
from rules.outage.config import WeComChannel
from rules.outage.messages import Renderer

__all__ = ["WeComDelivery"]


class WeComDelivery(Delivery[WeComChannel]):
    # WeCom refuses markdown over 4096 bytes (errcode 40058).
    max_bytes: ClassVar[int | None] = 4_096

    markdown: ClassVar[bool] = True

    def __init__(self, config: WeComChannel, renderer: Renderer, context: ChannelContext) -> None:
        super().__init__(config, renderer, context)
        self.http = Http(config.url, config.timeout.total_seconds())

    def secrets(self) -> Iterable[str | None]:
        return url_secrets(self.config.url)

    def send(self, notices: Sequence[Notice]) -> None:
        _, md = self.renderer.markdown(notices, self.max_bytes)
        answer = self.http.post({"msgtype": "markdown", "markdown": {"content": md}})
        check_code(answer, "errcode")
