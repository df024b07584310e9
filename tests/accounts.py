"""A real Mosquitto run with the accounts `waystation broker-config` writes, for the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.brokerconfig import write_broker_config
from app.localservers import MosquittoServer
from tests.helpers import station_data
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings


def two_stations(a: str = "st-a", b: str = "st-b") -> Registry:
    return parse_registry({"version": 1, "stations": station_data(a) | station_data(b)})


@dataclass
class SecuredBroker:
    server: MosquittoServer
    credentials: dict[str, str]

    def as_user(self, user: str, password: str | None = None) -> MqttSettings:
        secret = self.credentials[user] if password is None else password
        return MqttSettings.from_url(f"mqtt://{user}:{secret}@127.0.0.1:{self.server.port}")


@contextmanager
def secured_broker(registry: Registry, workdir: Path, extra: str = "") -> Iterator[SecuredBroker]:
    """Mosquitto with broker-config's passwd, acl and accounts.conf (the shipped settings)."""
    files = write_broker_config(registry, workdir / "broker")
    server = MosquittoServer(
        workdir / "mosquitto", files.mosquitto_conf.read_text() + extra, anonymous=False
    )
    server.start()
    try:
        yield SecuredBroker(server, yaml.safe_load(files.credentials.read_text()))
    finally:
        server.stop()
