"""Connection settings shared by every command (SPEC §11).

Each setting comes from, in order: its command-line flag, its environment
variable, the config file (`--config`, YAML with the same names), then the
default. Resolution happens when a command starts, never at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, create_model

from waystation.configerror import ConfigError, Problem, Text
from waystation.configfile import load_document
from waystation.redact import register_secret
from waystation.validation import validate

__all__ = [
    "SETTINGS",
    "MqttSettings",
    "MqttVersion",
    "SettingsError",
    "check_influx_url",
    "load_config_file",
    "resolve",
]


class SettingsError(ConfigError):
    """A setting is missing or malformed; the message says which and where it came from."""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str
    flag: str
    env: str
    default: str | None
    help: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("mqtt", "--mqtt", "WAYSTATION_MQTT", "mqtt://127.0.0.1:1883",
                "broker, mqtt://[user:pass@]host:port (mqtts:// for TLS)"),
    SettingSpec("mqtt_ca", "--mqtt-ca", "WAYSTATION_MQTT_CA", None,
                "CA certificate file for mqtts:// (default: the system's CAs)"),
    SettingSpec("influx", "--influx", "WAYSTATION_INFLUX", "http://127.0.0.1:8086",
                "InfluxDB base URL, http://host:port"),
    SettingSpec("database", "--database", "WAYSTATION_DATABASE", "waystation",
                "database (InfluxDB 2.x: the bucket's DBRP database)"),
    SettingSpec("influx_token", "--influx-token", "WAYSTATION_INFLUX_TOKEN", None,
                "InfluxDB token, or user:password"),
    SettingSpec("registry", "--registry", "WAYSTATION_REGISTRY", "stations.yaml",
                "station registry file"),
)  # fmt: skip


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


_Setting = Annotated[str | None, BeforeValidator(_text)]
# The `--config` file: any of the settings by name, nothing else.
SettingsFile: type[BaseModel] = create_model(
    "SettingsFile",
    __config__=ConfigDict(extra="forbid", frozen=True),
    **{spec.name: (_Setting, None) for spec in SETTINGS},  # type: ignore[call-overload]
)


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    missing = Text("check the path given to --config", "检查 --config 给出的路径")
    try:
        document = load_document(path, missing=missing)
    except ConfigError as exc:
        raise SettingsError(exc.problems) from None
    if document.data is None:
        return {}
    settings = validate(SettingsFile, document, error=SettingsError)
    return {k: v for k, v in settings.model_dump().items() if v is not None}


def resolve(
    flags: Mapping[str, str | None],
    config: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    env = os.environ if environ is None else environ
    out: dict[str, str | None] = {}
    for spec in SETTINGS:
        value = flags.get(spec.name)
        if value is None:
            value = env.get(spec.env) or None
        if value is None and config.get(spec.name) is not None:
            value = str(config[spec.name])
        out[spec.name] = value if value is not None else spec.default
    return out


class MqttVersion(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None

    @classmethod
    def from_url(cls, url: str, ca_file: str | Path | None = None) -> MqttSettings:
        parts = urlsplit(url)
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            port = 0
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or not port:
            raise _bad_url("broker", "MQTT 服务器", url, "mqtt://host:1883 (mqtts:// for TLS)",
                           "--mqtt / WAYSTATION_MQTT")  # fmt: skip
        password = unquote(parts.password) if parts.password else None
        register_secret(password)  # masked in every log line from now on
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=password,
            tls=parts.scheme == "mqtts",
            ca_file=Path(ca_file) if ca_file else None,
        )

    def __str__(self) -> str:  # safe to log: never the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def check_influx_url(url: str) -> str:
    """The InfluxDB base URL every server command uses: http(s)://host[:port]."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise _bad_url("InfluxDB", "InfluxDB", url, "http://host:8086",
                       "--influx / WAYSTATION_INFLUX")  # fmt: skip
    return url


def _bad_url(what: str, what_zh: str, url: str, like: str, where: str) -> SettingsError:
    shown = _redact(url)
    return SettingsError(
        Problem(
            Text(f"{what} URL {shown!r} is not like {like}",
                 f"{what_zh} 地址 {shown!r} 格式不对，应写成 {like}"),
            Text(f"give the scheme, host and port in {where}",
                 f"在 {where} 里写上协议、主机和端口"),
            where=where,
            code="bad_url",
        )
    )  # fmt: skip


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
