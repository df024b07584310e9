"""InfluxDB through its 1.x-compatible HTTP API (SPEC §3).

`POST /write` with line protocol and `/query` with InfluxQL are served by
InfluxDB 1.x natively, by 2.x as its v1 compatibility API and by 3.x, so this
one code path works on all three. Write failures are sorted the way a
pipeline needs them (cf. Telegraf's influxdb output):

- `StoreUnavailable` — connection refused, timeout, 5xx, 429: retry later,
  honouring Retry-After; nothing is lost by waiting.
- `BatchTooLarge` — 413: split the batch and write the halves.
- `PointsRejected` — 400 (bad line, field type conflict, partial write):
  the batch holds at least one point the database will never accept. Writes
  are idempotent (a point is identified by series and time), so the caller can
  take the bad points out and write the rest. A field-type conflict names its
  measurement and field (`conflicts`), so those points are found directly;
  otherwise the caller bisects.
- `StoreFatal` — 401/403/404 and other answers no retry will fix
  (wrong token, missing database): stop and tell the operator.

Thread-safety: one `InfluxStore` may be shared by threads; urllib3's pool
hands each request its own connection.
"""

from __future__ import annotations

import json
import re
import time
from base64 import b64encode
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import urllib3

from waystation.lineprotocol import field_type
from waystation.redact import redact, register_secret

__all__ = [
    "BatchTooLarge",
    "FieldConflict",
    "InfluxStore",
    "PointsRejected",
    "QueryError",
    "Series",
    "StoreError",
    "StoreFatal",
    "StoreUnavailable",
    "classify_write_failure",
]

# Retry-After is honoured up to this; a server asking for longer is asked again.
MAX_RETRY_AFTER_S = 300.0


class StoreError(Exception):
    """Base of everything the store raises."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StoreUnavailable(StoreError):
    """Transient: retry after `retry_after` seconds (None: use your own backoff)."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class BatchTooLarge(StoreError):
    """413: the request body is over the server's limit; split and retry."""


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """A field written with another type than the database holds (types as InfluxDB names them)."""

    measurement: str
    field: str
    input_type: str  # float, integer, unsigned, string or boolean
    existing_type: str

    def matches(self, line: str) -> bool:
        """Whether this line writes the conflicting field with the refused type."""
        return field_type(line, self.measurement, self.field) == self.input_type


# InfluxDB 1.x and 2.x: 'partial write: field type conflict: input field "temp_c" on
# measurement "water_dispenser" is type string, already exists as type float dropped=3'
# (only the first conflict of a batch is named; `dropped` counts them all).
_CONFLICT = re.compile(
    r'field type conflict: input field "(?P<field>.*?)" on measurement "(?P<measurement>.*?)"'
    r" is type (?P<input>\w+), already exists as type (?P<existing>\w+)"
)


def field_conflicts(text: str) -> tuple[FieldConflict, ...]:
    return tuple(
        FieldConflict(m["measurement"], m["field"], m["input"], m["existing"])
        for m in _CONFLICT.finditer(text)
    )


class PointsRejected(StoreError):
    """400: at least one point is invalid for this database; the rest may be fine."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        conflicts: tuple[FieldConflict, ...] = (),
    ) -> None:
        super().__init__(message, status=status)
        self.conflicts = conflicts


class StoreFatal(StoreError):
    """Configuration or permission problem that retrying cannot fix."""


class QueryError(StoreError):
    """An InfluxQL query failed (syntax, unknown database, server error)."""


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # an HTTP date: rare here, fall back to our own backoff


def _error_text(body: bytes, limit: int = 500) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:limit]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, str):
        return error[:limit]
    return text[:limit]


def classify_write_failure(status: int, body: bytes, headers: Any = None) -> StoreError:
    """Map a non-2xx answer of `/write` to the error that says what to do next."""
    text = _error_text(body)
    if status == 413:
        return BatchTooLarge(f"batch too large: {text}", status=status)
    if status == 429 or status >= 500:
        return StoreUnavailable(
            f"InfluxDB answered {status}: {text}", status=status, retry_after=_retry_after(headers)
        )
    if status in (400, 422):
        conflicts = field_conflicts(_error_text(body, 4096))
        return PointsRejected(f"points rejected: {text}", status=status, conflicts=conflicts)
    if status in (401, 403):
        return StoreFatal(f"not authorised to write ({status}): {text}", status=status)
    if status == 404:
        return StoreFatal(f"database not found: {text}", status=status)
    return StoreFatal(f"unexpected answer {status} from /write: {text}", status=status)


@dataclass(frozen=True, slots=True)
class Series:
    """One series of an InfluxQL result."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) | self.tags for row in self.values]


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>: ")


def _why(exc: Exception) -> str:
    """urllib3's reason without the connection object's repr it starts with."""
    return _OBJECT_REPR.sub("", str(exc))


def _auth_headers(token: str | None) -> dict[str, str]:
    """`user:password` is basic auth (1.x users, 2.x v1-auth); anything else is a token."""
    if not token:
        return {}
    if ":" in token:
        return {"Authorization": "Basic " + b64encode(token.encode()).decode()}
    return {"Authorization": f"Token {token}"}


class InfluxStore:
    """A database (2.x: a bucket through its DBRP mapping) on one InfluxDB server."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        retention_policy: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreFatal(f"InfluxDB URL {redact(url)!r} must look like http://host:8086")
        if parts.username and not token:
            # http://user:password@host:8086: basic auth, and a URL without it to show.
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        if parts.password:
            register_secret(unquote(parts.password))
        register_secret(token.partition(":")[2] if token and ":" in token else token)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc = host + (f":{parts.port}" if parts.port else "")
        self.url = urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self._headers = _auth_headers(token)
        self._timeout = urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s)
        self._http = urllib3.PoolManager(
            num_pools=2, maxsize=8, timeout=self._timeout, retries=False
        )

    def __repr__(self) -> str:  # never show the token
        return f"InfluxStore({self.url!r}, database={self.database!r})"

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- HTTP ---------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: bytes | None = None,
        *,
        read_timeout_s: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = f"{self.url}{path}?{urlencode(params)}"
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        timeout = self._timeout
        if read_timeout_s is not None:
            timeout = urllib3.Timeout(connect=timeout.connect_timeout, read=read_timeout_s)
        try:
            return self._http.request(method, url, body=body, headers=headers, timeout=timeout)
        except urllib3.exceptions.HTTPError as exc:
            why = _why(exc)
            raise StoreUnavailable(
                f"InfluxDB at {self.url} unreachable: {why} | 无法连接 InfluxDB {self.url}：{why}"
            ) from exc

    # --- writing ------------------------------------------------------------------

    def write_lines(self, lines: Sequence[str]) -> None:
        """Write one batch of line-protocol lines (timestamps in ms) or raise a StoreError."""
        if not lines:
            return
        params = {"db": self.database, "precision": "ms"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        body = "\n".join(lines).encode("utf-8")
        resp = self._request("POST", "/write", params, body)
        if resp.status in (200, 204):
            return
        raise classify_write_failure(resp.status, resp.data, resp.headers)

    # --- reading ------------------------------------------------------------------

    def query(
        self, influxql: str, *, epoch: str = "ms", timeout_s: float | None = None
    ) -> list[Series]:
        """Run InfluxQL (one or more `;`-separated statements) and return every series.

        `timeout_s` waits longer (or shorter) for this answer than the store's default.
        """
        params = {"db": self.database, "q": influxql, "epoch": epoch}
        # POST serves SELECT and management statements alike on 1.x, 2.x and 3.x.
        resp = self._request("POST", "/query", params, read_timeout_s=timeout_s)
        if resp.status != 200:
            raise QueryError(
                f"query failed ({resp.status}): {_error_text(resp.data)}", status=resp.status
            )
        try:
            payload = json.loads(resp.data)
        except ValueError as exc:
            raise QueryError(f"query answer is not JSON: {resp.data[:200]!r}") from exc
        return list(_series(payload, influxql))

    def ping(self) -> bool:
        try:
            resp = self._request("GET", "/ping", {})
        except StoreUnavailable:
            return False
        return resp.status == 204

    def wait_until_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ping():
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"InfluxDB at {self.url} not ready after {timeout_s:.0f} s")
            time.sleep(0.1)

    def create_database(self) -> None:
        """`CREATE DATABASE` (idempotent). On InfluxDB 2.x use `waystation influx-setup`."""
        self.query(f'CREATE DATABASE "{_ident(self.database)}"')

    def drop_database(self) -> None:
        self.query(f'DROP DATABASE "{_ident(self.database)}"')


def _ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _series(payload: Any, influxql: str) -> Iterable[Series]:
    for result in payload.get("results", []):
        if "error" in result:
            raise QueryError(f"{result['error']} (in: {influxql[:200]})")
        for s in result.get("series", []):
            yield Series(
                name=s.get("name", ""),
                columns=s.get("columns", []),
                values=s.get("values", []),
                tags=s.get("tags") or {},
            )
    if "error" in payload:
        raise QueryError(f"{payload['error']} (in: {influxql[:200]})")
