"""A DingTalk (钉钉) custom robot: markdown, signed with the group's secret.

`sign = base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}"))`, sent
as the `timestamp` and (URL-encoded) `sign` query parameters (DingTalk's
published algorithm).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import ClassVar
from urllib.parse import quote_plus

from rules.outage.alerts import Notice
from rules.outage.channels.base import ChannelContext, Delivery
from rules.outage.channels.http import Http, check_code, url_secrets
from rules.outage.config import DingTalkChannel
from rules.outage.messages import Renderer

__all__ = ["DingTalkDelivery", "dingtalk_sign"]


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class DingTalkDelivery(Delivery[DingTalkChannel]):
    # DingTalk's robot takes at most 20,000 bytes of content.
    max_bytes: ClassVar[int | None] = 20_000

    markdown: ClassVar[bool] = True

    def __init__(
        self, config: DingTalkChannel, renderer: Renderer, context: ChannelContext
    ) -> None:
        super().__init__(config, renderer, context)
        self.http = Http(config.url, config.timeout.total_seconds())

    def secrets(self) -> Iterable[str | None]:
        return [*url_secrets(self.config.url), self.config.secret]

    def send(self, notices: Sequence[Notice]) -> None:
        title, md = self.renderer.markdown(notices, self.max_bytes)
        url = self.http.url
        if self.config.secret:
            ts = int(self.context.clock() * 1000)
            sign = quote_plus(dingtalk_sign(self.config.secret, ts))
            url = f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign}"
        answer = self.http.post(
            {"msgtype": "markdown", "markdown": {"title": title, "text": md}}, url
        )
        check_code(answer, "errcode")
