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
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

__all__ = [
    "SETTINGS",
    "MqttSettings",
    "MqttVersion",
    "SettingsError",
    "load_config_file",
    "resolve",
]


class SettingsError(ValueError):
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


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: expected a mapping of setting: value")
    known = {s.name for s in SETTINGS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"config file {path}: unknown setting(s) {unknown}; known: {sorted(known)}"
        )
    return data


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
        if parts.scheme not in ("mqtt", "mqtts"):
            raise SettingsError(f"broker URL {_redact(url)!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise SettingsError(f"broker URL {_redact(url)!r} has no host")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError as exc:
            raise SettingsError(f"broker URL {_redact(url)!r}: {exc}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts",
            ca_file=Path(ca_file) if ca_file else None,
        )

    def __str__(self) -> str:  # safe to log: never the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
