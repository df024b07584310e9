"""The rules service's settings file: thresholds, timing, language and channels.

Secrets never live in the file: `${NAME}` anywhere in a string is replaced by
the environment variable NAME when the file is loaded, and a missing variable
is an error naming it.
"""

from __future__ import annotations

import difflib
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from rules.outage.channelnames import channel_name_problems, route_name_problems
from rules.outage.routeconfig import RouteConfig
from waystation.configerror import ConfigError, Invalid, Problem, Text
from waystation.configfile import (
    Document,
    KeyPath,
    document_from_data,
    load_document,
    parse_text,
)
from waystation.contract import ALERTS_PREFIX
from waystation.durations import DurationField
from waystation.language import Language
from waystation.redact import redact
from waystation.validation import validate

__all__ = [
    "ChannelConfig",
    "DingTalkChannel",
    "EmailChannel",
    "FeishuChannel",
    "LogChannel",
    "MqttChannel",
    "RulesConfig",
    "RulesConfigError",
    "RulesDocument",
    "WeComChannel",
    "WebhookChannel",
    "default_rules_document",
    "load_rules_config",
    "parse_rate",
    "read_rules_config",
]


class RulesConfigError(ConfigError):
    """The rules settings file is invalid; the message names the field."""


_RATE_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|second|m|min|minute|h|hour)\s*$"
)
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(value: Any) -> tuple[int, float]:
    """`20/min` → (20 messages, per 60 s); `3/10s` → (3, per 10 s)."""
    m = _RATE_RE.match(str(value))
    if not m or float(m.group(1)) < 1 or float(m.group(2) or 1) <= 0:
        raise Invalid(
            Text(f"{value!r} is not a rate like 20/min, 5/s or 3/10s",
                 f"{value!r} 不是频率，应写成 20/min、5/s 或 3/10s 这样"),
        )  # fmt: skip
    return int(float(m.group(1))), float(m.group(2) or 1) * _PER[m.group(3)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    """A URL the service will call: http(s)://host[:port]/…, checked at start-up."""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = redact(value)  # a robot's key or token must not reach the journal
        raise Invalid(
            Text(f"{shown!r} is not a URL like https://host/path",
                 f"{shown!r} 不是网址，应写成 https://主机/路径 这样"),
            Text("copy the whole address from the robot's settings, starting with https://",
                 "从机器人设置里复制完整地址，以 https:// 开头"),
            code="bad_url",
        )  # fmt: skip
    return value


# An address the service calls: checked at start-up, not at the first alert.
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class _Channel(_Strict):
    type: str
    # How routes and the state file know the channel; needed when a type is used twice.
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None
    rate: str = "60/min"
    # No longer used: notices are retried until delivered (timing.notice_retry_for).
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    # Connect and read timeout of each request (HTTP, SMTP).
    timeout: DurationField = timedelta(seconds=10)

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @property
    def label(self) -> str:
        return self.name or self.type


class WebhookChannel(_Channel):
    """Generic JSON webhook: the alert group as data."""

    type: Literal["webhook"]
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)


class WeComChannel(_Channel):
    """WeCom (企业微信) group robot, markdown; 20 messages a minute per robot."""

    type: Literal["wecom"]
    url: HttpUrl
    rate: str = "20/min"


class DingTalkChannel(_Channel):
    """DingTalk (钉钉) custom robot, markdown, signed; 20 messages a minute."""

    type: Literal["dingtalk"]
    url: HttpUrl
    secret: str | None = None
    rate: str = "20/min"


class FeishuChannel(_Channel):
    """Feishu / Lark (飞书) custom bot, signed in the body; 5 a second (100 a minute)."""

    type: Literal["feishu"]
    url: HttpUrl
    secret: str | None = None
    rate: str = "5/s"


class EmailChannel(_Channel):
    type: Literal["email"]
    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    ca_file: str | None = None  # a private CA for the SMTP server's certificate
    rate: str = "30/min"


class MqttChannel(_Channel):
    """`alerts/{station}/{rule}`, retained while firing, cleared when resolved."""

    type: Literal["mqtt"]
    prefix: str = ALERTS_PREFIX
    rate: str = "100/s"


class LogChannel(_Channel):
    type: Literal["log"]
    rate: str = "100/s"


ChannelConfig = Annotated[
    WebhookChannel
    | WeComChannel
    | DingTalkChannel
    | FeishuChannel
    | EmailChannel
    | MqttChannel
    | LogChannel,
    Field(discriminator="type"),
]


class Thresholds(_Strict):
    # A device is silent after this many of its reporting intervals (the registry's
    # `timeout` on a device overrides it).
    silent_intervals: Annotated[float, Field(gt=1)] = 3.0
    # A station is down when all of its devices went down within this window.
    station_window: DurationField = timedelta(minutes=2)
    # Water below this is "cold": above 0, at most boiling (800 made every dispenser cold).
    dispenser_min_temp_c: Annotated[float, Field(gt=0, le=100)] = 80.0
    dispenser_cold_for: DurationField = timedelta(minutes=20)
    meter_stuck_for: DurationField = timedelta(minutes=30)
    meter_stuck_min_kwh: Annotated[float, Field(gt=0)] = 0.05
    door_silent_for: DurationField = timedelta(hours=3)
    # No data, no verdict: after (re)connecting to the broker, missing readings or
    # statuses raise nothing for this long. At least the agents' longest reconnect
    # delay plus one reporting interval; none: 30 s plus the registry's longest interval.
    reconnect_grace: DurationField | None = None
    # Cut off from the broker this long: one `monitoring_lost` alert (critical).
    monitoring_lost_after: DurationField = timedelta(minutes=1)


class Timing(_Strict):
    """Alertmanager's timers, per station group."""

    group_wait: DurationField = timedelta(seconds=1)
    group_interval: DurationField = timedelta(seconds=30)
    repeat_interval: DurationField = timedelta(hours=4)
    scan_every: DurationField = timedelta(seconds=1)
    # How long a condition must hold before its alert fires, per rule; default 0.
    pending_for: dict[str, DurationField] = Field(default_factory=dict)
    # A notice a channel cannot deliver is retried (with backoff) this long, then given up.
    notice_retry_for: DurationField = timedelta(hours=24)
    # A channel failing this long is reported on the other channels (`channel_failing`).
    channel_failing_after: DurationField = timedelta(minutes=10)

    @field_validator("pending_for")
    @classmethod
    def _rules(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        from rules.outage.detect import Rule  # noqa: PLC0415 - detect imports this module

        names = [str(r) for r in Rule]
        unknown = [
            ((name,), Invalid(
                Text(f"there is no rule {name!r}", f"没有名为 {name!r} 的规则"),
                Text(f"did you mean {close[0]!r}?", f"是不是 {close[0]!r}？") if close else
                Text(f"rules: {', '.join(names)}", f"规则有：{', '.join(names)}"),
                code="unknown_rule",
            ))
            for name in value
            if name not in names
            for close in [difflib.get_close_matches(name, names, n=1, cutoff=0.6)]
        ]  # fmt: skip
        if unknown:
            raise Invalid(problems=unknown)
        return value


def _log_only() -> list[ChannelConfig]:
    return [LogChannel(type="log")]


class RulesConfig(_Strict):
    # None: the registry's `language` (zh unless it says otherwise).
    language: Language | None = None
    thresholds: Thresholds = Thresholds()
    timing: Timing = Timing()
    channels: list[ChannelConfig] = Field(default_factory=_log_only)
    # Who gets which alert (README "Routing by party"); none: every channel gets every alert.
    route: RouteConfig | None = None

    @model_validator(mode="after")
    def _names(self) -> RulesConfig:
        problems = channel_name_problems(self.channels)
        if self.route is not None:
            problems += route_name_problems(self.route, {c.label for c in self.channels})
        if problems:
            raise Invalid(problems=problems)
        return self


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, path: KeyPath, missing: list[tuple[KeyPath, str]]) -> Any:
    """`${NAME}` in any string, from the environment; what is not set is noted with its place."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in os.environ:
                missing.append((path, m.group(1)))
                return ""
            return os.environ[m.group(1)]

        return _ENV_RE.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, (*path, i), missing) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k), missing) for k, v in value.items()}
    return value


def _unset(doc: Document, missing: list[tuple[KeyPath, str]]) -> list[Problem]:
    return [
        doc.problem(
            path,
            Text(f"environment variable {name} is not set", f"环境变量 {name} 没有设置"),
            Text(
                f"set {name} in the service's environment (server.env), or write the value here",
                f"在服务的环境（server.env）里设置 {name}，或直接写在这里",
            ),
            code="env_not_set",
            on_key=False,
        )
        for path, name in missing
    ]


class RulesDocument(NamedTuple):
    config: RulesConfig
    document: Document


_MISSING = Text(
    "name the rules config with --rules-config FILE (`waystation rules --sample-config` "
    "prints one)",
    "用 --rules-config 文件 指定规则配置（`waystation rules --sample-config` 可打印示例）",
)


def _validated(doc: Document) -> RulesConfig:
    """The config with `${NAME}`s filled in; an unset one is listed with every other problem.

    An unset variable reads as empty, and what that alone makes wrong on its line is not
    reported twice.
    """
    if doc.data is None:
        return RulesConfig()  # an empty file: the defaults
    missing: list[tuple[KeyPath, str]] = []
    data = _expand(doc.data, (), missing)
    unset = _unset(doc, missing)
    try:
        config = validate(RulesConfig, doc, error=RulesConfigError, prepare=lambda _: data)
    except RulesConfigError as exc:
        lines = {p.line for p in unset}
        others = [p for p in exc.problems if p.line is None or p.line not in lines]
        found = sorted([*unset, *others], key=lambda p: (p.line or 0, p.column or 0))
        raise RulesConfigError(found) from None
    if unset:
        raise RulesConfigError(unset)
    return config


def parse_rules_config(data: Any, source: str) -> RulesConfig:
    return _validated(document_from_data(data, source))


def read_rules_config(path: Path) -> RulesDocument:
    """The rules config and its document (for locating cross-checks' problems)."""
    try:
        document = load_document(path, missing=_MISSING)
    except ConfigError as exc:
        raise RulesConfigError(exc.problems) from None
    return RulesDocument(_validated(document), document)


def load_rules_config(path: Path | None) -> RulesConfig:
    """The file's settings, or the defaults (log channel only) without a file."""
    if path is None:
        return RulesConfig()
    return read_rules_config(path).config


def default_rules_document() -> RulesDocument:
    """The defaults, as if from an empty file (what `rules` runs without --rules-config)."""
    return RulesDocument(RulesConfig(), parse_text("", "<default rules config>"))
