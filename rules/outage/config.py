"""The rules service's settings file: thresholds, timing, language and channels.

Secrets never live in the file: `${NAME}` anywhere in a string is replaced by
the environment variable NAME when the file is loaded, and a missing variable
is an error naming it.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from waystation.registry import DurationField
from waystation.validation import describe_errors

__all__ = [
    "ChannelConfig",
    "DingTalkChannel",
    "EmailChannel",
    "FeishuChannel",
    "LogChannel",
    "MqttChannel",
    "RulesConfig",
    "RulesConfigError",
    "WeComChannel",
    "WebhookChannel",
    "load_rules_config",
    "parse_rate",
]


class RulesConfigError(ValueError):
    """The rules settings file is invalid; the message names the field."""


_RATE_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|second|m|min|minute|h|hour)\s*$"
)
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(value: Any) -> tuple[int, float]:
    """`20/min` → (20 messages, per 60 s); `3/10s` → (3, per 10 s)."""
    m = _RATE_RE.match(str(value))
    if not m or float(m.group(1)) < 1 or float(m.group(2) or 1) <= 0:
        raise ValueError(f"{value!r} is not a rate like 20/min, 5/s or 3/10s")
    return int(float(m.group(1))), float(m.group(2) or 1) * _PER[m.group(3)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Channel(_Strict):
    type: str
    name: str | None = None
    rate: str = "60/min"
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
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
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class WeComChannel(_Channel):
    """WeCom (企业微信) group robot, markdown; 20 messages a minute per robot."""

    type: Literal["wecom"]
    url: str
    rate: str = "20/min"


class DingTalkChannel(_Channel):
    """DingTalk (钉钉) custom robot, markdown, signed; 20 messages a minute."""

    type: Literal["dingtalk"]
    url: str
    secret: str | None = None
    rate: str = "20/min"


class FeishuChannel(_Channel):
    """Feishu / Lark (飞书) custom bot, signed in the body; 5 a second (100 a minute)."""

    type: Literal["feishu"]
    url: str
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
    prefix: str = "alerts"
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
    dispenser_min_temp_c: float = 80.0
    dispenser_cold_for: DurationField = timedelta(minutes=20)
    meter_stuck_for: DurationField = timedelta(minutes=30)
    meter_stuck_min_kwh: Annotated[float, Field(gt=0)] = 0.05
    door_silent_for: DurationField = timedelta(hours=3)


class Timing(_Strict):
    """Alertmanager's timers, per station group."""

    group_wait: DurationField = timedelta(seconds=1)
    group_interval: DurationField = timedelta(seconds=30)
    repeat_interval: DurationField = timedelta(hours=4)
    scan_every: DurationField = timedelta(seconds=1)
    # How long a condition must hold before its alert fires, per rule; default 0.
    pending_for: dict[str, DurationField] = Field(default_factory=dict)


def _log_only() -> list[ChannelConfig]:
    return [LogChannel(type="log")]


class RulesConfig(_Strict):
    language: Literal["zh", "en"] = "zh"
    thresholds: Thresholds = Thresholds()
    timing: Timing = Timing()
    channels: list[ChannelConfig] = Field(default_factory=_log_only)


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, missing: set[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in os.environ:
                missing.add(m.group(1))
                return ""
            return os.environ[m.group(1)]

        return _ENV_RE.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, missing) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, missing) for k, v in value.items()}
    return value


def parse_rules_config(data: Any, source: str) -> RulesConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesConfigError(f"{source}: expected a mapping")
    missing: set[str] = set()
    data = _expand(data, missing)
    if missing:
        raise RulesConfigError(
            f"{source}: environment variable(s) not set: {', '.join(sorted(missing))}"
        )
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as exc:
        raise RulesConfigError(
            describe_errors(source, exc, lambda loc: ".".join(map(str, loc)))
        ) from exc


def load_rules_config(path: Path | None) -> RulesConfig:
    """The file's settings, or the defaults (log channel only) without a file."""
    if path is None:
        return RulesConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RulesConfigError(f"{path}: cannot read: {exc}") from exc
    return parse_rules_config(data, str(path))
