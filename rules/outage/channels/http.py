"""What the HTTP channels share: a bounded POST, the sorting of its failures, URL secrets.

A read timeout is not a connect failure: the request went out and the peer
may have acted on it. It is retried too, the first few times with the usual
backoff, then only after a minute, doubling up to 5 min while it goes on; the
message carries a stable id (the webhook's `id`, and the `Idempotency-Key`
header) so a receiver can drop the repeat.

The webhook and the WeCom, DingTalk and Feishu robots POST JSON. A failure
that may pass (unreachable, timed out, 429, 5xx) is retryable, with the
server's Retry-After; any other 4xx is not. The robots answer HTTP 200 with
an error code in the body; a non-zero code is a failure, retried only when
it says "too fast".
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import urllib3

from rules.outage.channels.base import DeliveryError
from waystation.redact import redact

__all__ = ["Http", "check_code", "url_secrets"]

# The robots' "sending too fast" codes: worth a retry after a pause.
THROTTLED = {45009, 130101, 9499, 11232}
# No answer after the request went out: the peer may have acted on it. The first few
# read timeouts in a row are retried with the usual backoff (an endpoint that hung
# for a minute gets its notices soon after); after that the retry (a duplicate,
# perhaps) waits READ_TIMEOUT_RETRY_S, doubling up to the cap: a peer that is
# always slower than the timeout gets a repeat at most every 5 minutes.
QUICK_READ_TIMEOUTS = 4
READ_TIMEOUT_RETRY_S = 60.0
READ_TIMEOUT_RETRY_MAX_S = 300.0


class Http:
    """One POST at a time, each bounded: a connect and a read timeout, and a total of both.

    A hung endpoint costs one connection for one timeout, then the attempt is
    a retryable failure; the connection is closed, never left open behind us.
    """

    def __init__(self, url: str, timeout_s: float, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.read_timeouts = 0  # in a row
        self.headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s, total=2 * timeout_s)
        self.pool = urllib3.PoolManager(timeout=timeout, retries=False, maxsize=1)

    def post(self, body: dict[str, Any], url: str | None = None, *, key: str | None = None) -> Any:
        """POST `body`; `key`, the message's id, goes out as `Idempotency-Key` too."""
        headers = self.headers if key is None else {**self.headers, "Idempotency-Key": key}
        try:
            resp = self.pool.request(
                "POST",
                url or self.url,
                body=json.dumps(body, ensure_ascii=False).encode(),
                headers=headers,
            )
        except urllib3.exceptions.ReadTimeoutError as exc:
            self.pool.clear()
            slow = self.read_timeouts - QUICK_READ_TIMEOUTS
            self.read_timeouts += 1
            wait = (
                None if slow < 0 else min(READ_TIMEOUT_RETRY_S * 2**slow, READ_TIMEOUT_RETRY_MAX_S)
            )
            later = "soon" if wait is None else f"in {wait:.0f} s"
            raise DeliveryError(
                f"{self._where} did not answer within {self.timeout_s:.0f} s of the request: "
                f"it may have taken it, so the retry ({later}) may arrive twice (receivers can "
                f"drop a repeated message id); set the channel's timeout above the time the "
                f"peer takes to answer",
                retry=True,
                retry_after_s=wait,
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            self.pool.clear()  # whatever the failed attempt left open is closed now
            # urllib3's message quotes the path and query: the hook's token.
            raise DeliveryError(
                f"cannot reach {self._where}: {redact(_reason(exc))}", retry=True
            ) from exc
        self.read_timeouts = 0
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


def check_code(answer: Any, *keys: str) -> None:
    """A robot's answer: a non-zero code under one of `keys` is a refusal."""
    if not isinstance(answer, dict):
        return
    for key in keys:
        code = answer.get(key)
        if isinstance(code, int) and code != 0:
            msg = answer.get("errmsg") or answer.get("msg") or ""
            raise DeliveryError(f"robot refused: {code} {msg}", retry=code in THROTTLED)


def url_secrets(url: str) -> list[str | None]:
    """A hook URL's secrets: its password, its query values (WeCom's `key`, DingTalk's
    `access_token`), and Feishu's token, the path's last part after `/hook/`."""
    parts = urlsplit(url)
    token = parts.path.rsplit("/", 1)[-1] if "/hook/" in parts.path else None
    return [parts.password, *(v for _, v in parse_qsl(parts.query)), token]
