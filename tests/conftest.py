"""Real servers for the integration tier, isolation for every test.

One Mosquitto and one InfluxDB 1.x per session, each on a free loopback port
in a temp dir. Every test gets its own database, its own station and device
ids (so retained messages of one test never reach another) and its own MQTT
client ids and shared-subscription group.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.localservers import InfluxServer, MosquittoServer
from tests.helpers import station_registry
from tests.load import reap_ingest_processes
from tests.rules_helpers import SMTP_PASSWORD
from tests.rules_peers import HookServer, SmtpPeer
from tests.tls import make_ca_and_cert
from waystation import mqttsession
from waystation.mqttsession import Engine
from waystation.registry import Registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = MosquittoServer(tmp_path_factory.mktemp("mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path_factory.mktemp("influxdb"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A broker of the test's own, free to stop and restart."""
    server = MosquittoServer(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def uid() -> str:
    """A short token unique to this test, for ids, databases and client ids."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def store(influxdb: InfluxServer, uid: str) -> Iterator[InfluxStore]:
    s = InfluxStore(influxdb.url, f"test_{uid}")
    s.create_database()
    yield s
    s.drop_database()
    s.close()


@pytest.fixture
def mqtt_settings(mosquitto: MosquittoServer) -> MqttSettings:
    return MqttSettings.from_url(mosquitto.url)


@pytest.fixture
def registry(uid: str) -> Registry:
    return station_registry(f"st-{uid}")


@pytest.fixture
def deadletter_file(tmp_path: Path) -> Path:
    return tmp_path / "deadletter.jsonl"


@pytest.fixture(autouse=True)
def _no_leftover_workers() -> Iterator[None]:
    yield
    reap_ingest_processes()


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with HookServer() as server:
        yield server


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[SmtpPeer, Path]]:
    ca, cert, key = make_ca_and_cert(tmp_path)
    with SmtpPeer(cert, key, login=("alerts", SMTP_PASSWORD)) as peer:
        yield peer, ca


@pytest.fixture(params=list(Engine))
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine under the session adapter in turn: they keep the same promises."""
    return Engine(request.param)


@pytest.fixture
def quick_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions reconnect within a second or two, so a test sees several attempts."""
    monkeypatch.setattr(mqttsession, "RECONNECT_INITIAL_S", 0.2)
    monkeypatch.setattr(mqttsession, "RECONNECT_FLOOR_S", 0.1)
    monkeypatch.setattr(mqttsession, "RECONNECT_MAX_S", 1.0)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs of the test's own (root only: else the test is skipped)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the max_page_count test covers the logic")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
