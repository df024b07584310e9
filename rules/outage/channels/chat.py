"""HTTP channels: a generic JSON webhook and the WeCom, DingTalk and Feishu group robots.

Signatures follow the platforms' published algorithms:
- DingTalk: `sign = base64(HMAC-SHA256(key=secret, msg=f"{timestamp_ms}\\n{secret}"))`,
  sent as the `timestamp` and (URL-encoded) `sign` query parameters;
- Feishu: `sign = base64(HMAC-SHA256(key=f"{timestamp_s}\\n{secret}", msg=b""))`,
  sent in the JSON body with `timestamp`.
The robots answer HTTP 200 with an error code in the body; a non-zero code
is a failure, retried only when it says "too fast".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote_plus

import urllib3

from rules.outage.alerts import Alert, Notice
from rules.outage.channels.base import DeliveryError
from rules.outage.messages import Renderer
from waystation.redact import redact

__all__ = [
    "DingTalkDelivery",
    "FeishuDelivery",
    "WeComDelivery",
    "WebhookDelivery",
    "dingtalk_sign",
    "feishu_sign",
]

# The robots' "sending too fast" codes: worth a retry after a pause.
THROTTLED = {45009, 130101, 9499, 11232}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _Http:
    """One POST at a time, each bounded: a connect and a read timeout, and a total of both.

    A hung endpoint costs one connection for one timeout, then the attempt is
    a retryable failure; the connection is closed, never left open behind us.
    """

    def __init__(self, url: str, timeout_s: float, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s, total=2 * timeout_s)
        self.pool = urllib3.PoolManager(timeout=timeout, retries=False, maxsize=1)

    def post(self, body: dict[str, Any], url: str | None = None) -> Any:
        try:
            resp = self.pool.request(
                "POST",
                url or self.url,
                body=json.dumps(body, ensure_ascii=False).encode(),
                headers=self.headers,
            )
        except urllib3.exceptions.HTTPError as exc:
            self.pool.clear()  # whatever the failed attempt left open is closed now
            # urllib3's message quotes the path and query: the hook's token.
            raise DeliveryError(
                f"cannot reach {self._where}: {redact(_reason(exc))}", retry=True
            ) from exc
        if resp.status == 429 or resp.status >= 500:
            raise DeliveryError(
                f"{self._where} answered {resp.status}",
                retry=True,
                retry_after_s=_retry_after(resp.headers.get("Retry-After")),
            )
        if resp.status >= 400:
            raise DeliveryError(f"{self._where} answered {resp.status}", retry=False)
        try:
            return json.loads(resp.data) if resp.data else None
        except ValueError:
            return None

    @property
    def _where(self) -> str:
        # Never the query string (WeCom's key, DingTalk's access_token) nor Feishu's
        # hook token in the path.
        return redact(self.url.split("?", 1)[0])


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    """The short cause (timed out, refused), without the pool's object names."""
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "no answer in time (timed out)"
    cause = getattr(exc, "reason", None)
    return str(cause or exc).split(": ", 1)[-1]


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: rare from a chat robot; our own backoff applies


def _check_code(answer: Any, *keys: str) -> None:
    if not isinstance(answer, dict):
        return
    for key in keys:
        code = answer.get(key)
        if isinstance(code, int) and code != 0:
            msg = answer.get("errmsg") or answer.get("msg") or ""
            raise DeliveryError(f"robot refused: {code} {msg}", retry=code in THROTTLED)


def _alert_data(alert: Alert) -> dict[str, Any]:
    return {
        "key": alert.key,
        "rule": alert.rule.value,
        "device": alert.device,
        "severity": alert.severity,
        "state": alert.state.value,
        "since": alert.since_ms,
        "resolved": alert.resolved_ms,
        "detail": alert.detail,
    }


class WebhookDelivery:
    """POSTs `{"title", "text", "notices": [{station, station_name, firing, resolved}]}`."""

    def __init__(
        self, url: str, renderer: Renderer, timeout_s: float, headers: dict[str, str]
    ) -> None:
        self.http = _Http(url, timeout_s, headers)
        self.renderer = renderer

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
                    "firing": [_alert_data(a) for a in n.firing],
                    "resolved": [_alert_data(a) for a in n.resolved],
                }
                for n in notices
            ],
        })  # fmt: skip


class WeComDelivery:
    def __init__(self, url: str, renderer: Renderer, timeout_s: float) -> None:
        self.http = _Http(url, timeout_s)
        self.renderer = renderer

    def send(self, notices: Sequence[Notice]) -> None:
        _, md = self.renderer.markdown(notices)
        answer = self.http.post({"msgtype": "markdown", "markdown": {"content": md}})
        _check_code(answer, "errcode")


class _SignedRobot:
    """A robot whose messages carry a signature of the time and the group's secret."""

    def __init__(
        self,
        url: str,
        secret: str | None,
        renderer: Renderer,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.http = _Http(url, timeout_s)
        self.secret = secret
        self.renderer = renderer
        self.clock = clock


class DingTalkDelivery(_SignedRobot):
    def send(self, notices: Sequence[Notice]) -> None:
        title, md = self.renderer.markdown(notices)
        url = self.http.url
        if self.secret:
            ts = int(self.clock() * 1000)
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timestamp={ts}&sign={quote_plus(dingtalk_sign(self.secret, ts))}"
        answer = self.http.post(
            {"msgtype": "markdown", "markdown": {"title": title, "text": md}}, url
        )
        _check_code(answer, "errcode")


class FeishuDelivery(_SignedRobot):
    def send(self, notices: Sequence[Notice]) -> None:
        title, text = self.renderer.text(notices)
        body: dict[str, Any] = {"msg_type": "text", "content": {"text": f"{title}\n{text}"}}
        if self.secret:
            ts = int(self.clock())
            body |= {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts)}
        answer = self.http.post(body)
        _check_code(answer, "code", "StatusCode")
