"""No secret in a log line (SPEC §9): URLs and known secrets masked in every record.

Two nets, both applied to whatever a log line says (the message, and the
traceback with it, since exceptions of HTTP libraries quote the URL):

- URL shapes: the password of `scheme://user:password@host` (the user name
  stays: it says which account), the values of query parameters that carry
  secrets (WeCom's `key`, DingTalk's `access_token` and `sign`, InfluxDB 1.x's
  `p`, any `token`, `password`, `secret`, ...), and the token path segment of
  Feishu/Lark hooks (`/open-apis/bot/v2/hook/<token>`);
- the secrets themselves: every password, token and signing secret a command
  was given (settings, the rules' channels) is registered once at start and
  replaced wherever it shows up.

`install()` wraps the formatter of every root handler, so third-party
libraries' lines (urllib3 logs each request's path and query at DEBUG) pass
through it too.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "install", "redact", "register_secret"]

MASK = "***"

# Query parameters whose value is a secret (compared without case).
SECRET_PARAMS = (
    "access_token", "api_key", "apikey", "auth", "key", "p", "password", "passwd", "pwd",
    "secret", "sign", "signature", "token",
)  # fmt: skip
# Shorter than this, a "secret" would mask ordinary words in log lines.
MIN_SECRET_CHARS = 6

_USERINFO = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:@/]*):(?P<password>[^\s@/]+)@", re.IGNORECASE
)
_PARAM = re.compile(
    r"(?P<head>[?&;](?:" + "|".join(SECRET_PARAMS) + r")=)(?P<value>[^&#\s'\"<>]+)", re.IGNORECASE
)
_HOOK = re.compile(r"(?P<head>/hook/)(?P<token>[A-Za-z0-9_.~-]+)")

_lock = threading.Lock()
_secrets: list[str] = []  # longest first, so a secret containing another is masked whole


def register_secret(value: str | None) -> None:
    """Mask this value (and its URL-encoded forms) in every log line from now on."""
    if not value or len(value) < MIN_SECRET_CHARS:
        return
    with _lock:
        for form in {value, quote(value, safe=""), quote_plus(value)}:
            if form not in _secrets:
                _secrets.append(form)
        _secrets.sort(key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with registered secrets and URL secrets masked."""
    with _lock:
        secrets = list(_secrets)
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _PARAM.sub(lambda m: m["head"] + MASK, text)
    return _HOOK.sub(lambda m: m["head"] + MASK, text)


class _Redacting(logging.Formatter):
    """Formats with the handler's own formatter, then masks."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def install(logger: logging.Logger | None = None) -> None:
    """Mask secrets in everything the logger's handlers write (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not isinstance(handler.formatter, _Redacting):
            handler.setFormatter(_Redacting(handler.formatter))
