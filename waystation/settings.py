"""Connection settings shared by every command (SPEC §11), on pydantic-settings.

Each setting comes from, in order: its command-line flag, its environment
variable (`WAYSTATION_` and its name in capitals), the config file
(`--config`, YAML with the same names), then the default. Resolution happens
when a command starts, never at import time.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from waystation.configerror import ConfigError, Problem, Text
from waystation.configfile import load_document
from waystation.redact import register_secret
from waystation.validation import validate

__all__ = [
    "SETTINGS",
    "MqttSettings",
    "MqttVersion",
    "Origin",
    "Settings",
    "SettingsError",
    "check_influx_url",
    "load_config_file",
    "origins",
    "resolve",
]

ENV_PREFIX = "WAYSTATION_"


class SettingsError(ConfigError):
    """A setting is missing or malformed; the message says which and where it came from."""


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


# A number in the config file (`database: 2024`) is the text it reads as.
_Setting = Annotated[str | None, BeforeValidator(_text)]


class Settings(BaseSettings):
    """The connection settings: flag > environment > `--config` file > default (`resolve`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,  # WAYSTATION_MQTT= is unset, not an empty URL
        extra="forbid",
        frozen=True,
    )

    mqtt: str = Field(
        "mqtt://127.0.0.1:1883",
        description="broker, mqtt://[user:pass@]host:port (mqtts:// for TLS)",
    )
    mqtt_ca: str | None = Field(
        None, description="CA certificate file for mqtts:// (default: the system's CAs)"
    )
    influx: str = Field("http://127.0.0.1:8086", description="InfluxDB base URL, http://host:port")
    database: str = Field(
        "waystation", description="database (InfluxDB 2.x: the bucket's DBRP database)"
    )
    influx_token: str | None = Field(None, description="InfluxDB token, or user:password")
    registry: str = Field("stations.yaml", description="station registry file")

    def __getitem__(self, name: str) -> str | None:
        value: str | None = getattr(self, name)
        return value

    def required(self, name: str) -> str:
        """The setting's value; a clear error (zh + en) when it has none."""
        value = self[name]
        if value is None:
            spec = next(spec for spec in SETTINGS if spec.name == name)
            raise SettingsError(
                Text(
                    f"{spec.flag} is not set: give it, or set {spec.env}",
                    f"没有设置 {spec.flag}：请给出它，或设置环境变量 {spec.env}",
                )
            )
        return value

    def given(self, name: str) -> bool:
        """Set by flag, environment or config file, not left at its default."""
        return name in self.model_fields_set


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """A setting as the command line shows it: its flag, environment variable, default, help."""

    name: str
    flag: str
    env: str
    default: str | None
    help: str


SETTINGS: tuple[SettingSpec, ...] = tuple(
    SettingSpec(
        name,
        "--" + name.replace("_", "-"),
        ENV_PREFIX + name.upper(),
        field.default,
        field.description or "",
    )
    for name, field in Settings.model_fields.items()
)

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


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a setting's value came from, to name it in a problem: flag, variable or file line."""

    where: str  # `--influx`, `WAYSTATION_INFLUX`, `influx (--config)`
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def locate(self, problems: list[Problem]) -> list[Problem]:
        """The problems, placed where the value was given."""
        return [
            replace(p, where=self.where, file=self.file, line=self.line, column=self.column)
            for p in problems
        ]


def origins(
    flags: Mapping[str, str | None],
    config_path: str | Path | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Origin]:
    """Where each setting given comes from, in the order `resolve` takes them."""
    environ = os.environ if environ is None else environ
    document = None
    if config_path is not None:
        with contextlib.suppress(ConfigError):  # said when the file is read
            document = load_document(config_path)
    found: dict[str, Origin] = {}
    for spec in SETTINGS:
        if flags.get(spec.name) is not None:
            found[spec.name] = Origin(spec.flag)
        elif environ.get(spec.env):
            found[spec.name] = Origin(spec.env)
        elif document is not None and (spec.name,) in document.values:
            line, column = document.values[(spec.name,)]
            found[spec.name] = Origin(f"{spec.name} (--config)", document.file, line, column)
    return found


class _Environment(EnvSettingsSource):
    """The environment given (a mapping), read as pydantic-settings reads `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {name.lower(): value for name, value in environ.items() if value}


def resolve(
    flags: Mapping[str, str | None],
    config: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings from the flags given (None: not given), the environment and the file.

    `config` is the `--config` file as `load_config_file` read it; `environ` is
    `os.environ` unless given.
    """
    given = {name: value for name, value in flags.items() if value is not None}
    file_values = dict(config)

    class Resolved(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env file
            file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no secrets dir
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            environment = env_settings if environ is None else _Environment(settings_cls, environ)
            return init_settings, environment, InitSettingsSource(settings_cls, file_values)

    return Resolved(**given)


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
    def from_url(
        cls, url: str, ca_file: str | Path | None = None, where: str = "--mqtt / WAYSTATION_MQTT"
    ) -> MqttSettings:
        parts = urlsplit(url)
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            port = 0
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or not port:
            raise _bad_url("broker", "MQTT 服务器", url, "mqtt://host:1883 (mqtts:// for TLS)",
                           where)  # fmt: skip
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


def check_influx_url(url: str, where: str = "--influx / WAYSTATION_INFLUX") -> str:
    """The InfluxDB base URL every server command uses: http(s)://host[:port].

    `where` names where it was given (a flag, a variable, the config file's key).
    """
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise _bad_url("InfluxDB", "InfluxDB", url, "http://host:8086", where)  # fmt: skip
    api = _API_PATH.search(parts.path)
    if api:
        root = url[: url.index(parts.path) + api.start()] or url
        raise SettingsError(
            Problem(
                Text(f"InfluxDB URL {_redact(url)!r} names an API path ({api.group(0)}): "
                     "Waystation adds /query and /write to the server's address itself",
                     f"InfluxDB 地址 {_redact(url)!r} 带了接口路径（{api.group(0)}）："
                     "Waystation 会自己在服务器地址后加 /query 和 /write"),
                Text(f"give the server's address: {_redact(root)}",
                     f"只写服务器地址：{_redact(root)}"),
                where=where,
                code="bad_url",
            )
        )  # fmt: skip
    return url


# The ends of InfluxDB's own API paths: a URL ending so is an endpoint, not the server
# (a path before them, a reverse proxy's prefix, is fine).
_API_PATH = re.compile(r"/(api/v2(/\w+)?|query|write|ping|health)/?$")


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
