"""A Feishu / Lark (飞书) custom bot: text, signed in the body with the group's secret.

`sign = base64(HMAC-SHA256(key=f"{timestamp_s}\\n{secret}", msg=b""))`, sent in
the JSON body with `timestamp` (Feishu's published algorithm).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rules.outage.alerts import Notice
from rules.outage.channels.base import ChannelContext, Delivery
from rules.outage.channels.http import Http, check_code, url_secrets
from rules.outage.config import FeishuChannel
from rules.outage.messages import Renderer

__all__ = ["FeishuDelivery", "feishu_sign"]


def feishu_sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FeishuDelivery(Delivery[FeishuChannel]):
    # Feishu's bot takes a request body of at most 20 KB; the text stays under.
    max_bytes: ClassVar[int | None] = 18_000

    def __init__(self, config: FeishuChannel, renderer: Renderer, context: ChannelContext) -> None:
        super().__init__(config, renderer, context)
        self.http = Http(config.url, config.timeout.total_seconds())

    def secrets(self) -> Iterable[str | None]:
        return [*url_secrets(self.config.url), self.config.secret]

    def send(self, notices: Sequence[Notice]) -> None:
        title, text = self.renderer.text(notices, self.max_bytes)
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": f"{title}\n{text}"}}
        if self.config.secret:
            ts = int(self.context.clock())
            body |= {"timestamp": str(ts), "sign": feishu_sign(self.config.secret, ts)}
        answer = self.http.post(body)
        check_code(answer, "code", "StatusCode")
