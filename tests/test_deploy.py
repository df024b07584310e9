"""What deploy/ ships agrees with the code it runs."""

from __future__ import annotations

import argparse
import configparser
import getpass
import shutil
import socket
import subprocess
from functools import partial
from pathlib import Path

import pytest
import yaml

from app.brokerconfig import write_broker_config
from app.cli import build_parser
from app.localservers import free_port
from dashboards.boards import DASHBOARDS
from edge.config import DEFAULT_OUTBOX
from tests.helpers import MqttSpy, connack, station_data, wait_for
from tests.tls import make_ca_and_cert
from waystation.registry import parse_registry
from waystation.settings import MqttSettings

DEPLOY = Path(__file__).parents[1] / "deploy"


def test_edge_unit_matches_the_agent() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / "waystation-edge.service")
    service = unit["Service"]
    # The agent's default outbox sits in the unit's state directory.
    assert DEFAULT_OUTBOX.parent == Path("/var/lib") / service["StateDirectory"]
    assert service["Restart"] == "always"
    assert service["User"] != "root"
    # The command line the unit runs is one the CLI accepts.
    argv = service["ExecStart"].split()
    assert argv[0].endswith("/waystation")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "edge"
    assert str(args.agent_config).startswith("/etc/" + service["ConfigurationDirectory"])


def test_mosquitto_config_includes_the_tested_limits() -> None:
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    assert "include_dir /mosquitto/config/conf.d" in conf
    limits = (DEPLOY / "mosquitto" / "conf.d" / "waystation-limits.conf").resolve()
    assert limits.name == "mosquitto-limits.conf"  # the very file the harness loads
    assert "persistence true" in limits.read_text()
    # The very file broker-config copies into the accounts.conf the tests run with.
    accounts = (DEPLOY / "mosquitto" / "conf.d" / "waystation-accounts.conf").resolve()
    assert accounts.name == "mosquitto-accounts.conf"
    assert "use_username_as_clientid true" in accounts.read_text()


def _unit_command(name: str) -> argparse.Namespace:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / name)
    service = unit["Service"]
    assert service["User"] != "root"
    assert service["Restart"] == "always"
    argv = service["ExecStart"].split()
    assert argv[0].endswith("/waystation")
    return build_parser().parse_args(argv[1:])


def test_server_units_run_commands_the_cli_accepts() -> None:
    assert _unit_command("waystation-ingest.service").command == "ingest"
    rules = _unit_command("waystation-rules.service")
    assert rules.command == "rules"
    assert str(rules.state).startswith("/var/lib/waystation/")


def test_compose_services_run_commands_the_cli_accepts() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"mosquitto", "influxdb", "influx-setup", "ingest", "rules", "grafana"}
    setup = build_parser().parse_args(services["influx-setup"]["command"])
    assert setup.command == "influx-setup"
    for name in ("ingest", "rules"):
        shell = services[name]["entrypoint"][-1]
        argv = shell.split("exec waystation ", 1)[1].split()
        assert build_parser().parse_args(argv).command == name
    # Only the broker's TLS port and Grafana are published.
    published = {p for s in services.values() for p in s.get("ports", [])}
    assert published == {"8883:8883", "3000:3000"}
    # Every directory mounted from the repository exists; secrets come from the environment.
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                expected = {"./broker", "./certs", "./stations.yaml", "./rules.yaml", "./tariffs"}
                assert (DEPLOY / source).exists() or source in expected, source
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "TOKEN", "SECRET")):
                assert str(value).startswith("${"), f"{key} is not from the environment"


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/waystation.yaml").read_text(encoding="utf-8")
    )["providers"][0]
    assert mounts["../dashboards/json"] == provider["options"]["path"]
    assert sorted(p.name for p in (DEPLOY / "../dashboards/json").iterdir()) == sorted(
        f"{n}.json" for n in DASHBOARDS
    )
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/waystation.yaml").read_text(encoding="utf-8")
    )["datasources"][0]
    assert datasource["type"] == "influxdb"
    assert (
        "$__file{/secrets/grafana-read.token}" in datasource["secureJsonData"]["httpHeaderValue1"]
    )


@pytest.mark.integration
def test_the_shipped_mosquitto_config_runs_with_tls_and_the_generated_accounts(
    tmp_path: Path,
) -> None:
    """deploy/mosquitto/mosquitto.conf, its paths moved into a temp dir, on a real Mosquitto."""
    registry = parse_registry({"version": 1, "stations": station_data("st-d")})
    files = write_broker_config(registry, tmp_path / "broker")
    creds = yaml.safe_load(files.credentials.read_text())
    ca, cert, key = make_ca_and_cert(tmp_path)
    (tmp_path / "conf.d").mkdir()
    for name in ("limits", "accounts"):
        (tmp_path / "conf.d" / f"{name}.conf").write_text(
            (DEPLOY / f"mosquitto/conf.d/waystation-{name}.conf").read_text()
        )
    for f in (files.passwd, files.acl, key):
        f.chmod(0o600)
    # Another test (or worker) may take a free port before Mosquitto binds it: try others.
    for _attempt in range(3):
        plain, tls = free_port(), free_port()
        conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
        conf = (
            conf.replace("/mosquitto/broker/", f"{tmp_path}/broker/")
            .replace("/mosquitto/certs/server.crt", str(cert))
            .replace("/mosquitto/certs/server.key", str(key))
            .replace("/mosquitto/certs/ca.crt", str(ca))
            .replace("/mosquitto/data/", f"{tmp_path}/")
            .replace("/mosquitto/config/conf.d", f"{tmp_path}/conf.d")
            .replace("listener 1883", f"listener {plain} 127.0.0.1")
            .replace("listener 8883", f"listener {tls} 127.0.0.1")
        )
        # As root, Mosquitto would drop to the `mosquitto` user, who cannot read our temp files.
        conf += f"\nuser {getpass.getuser()}\n"
        (tmp_path / "mosquitto.conf").write_text(conf)
        log = tmp_path / "mosquitto.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([_mosquitto(), "-c", str(tmp_path / "mosquitto.conf")],
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_for(partial(_up, proc, tls, plain), "the shipped config to start", 60)
        except AssertionError:
            proc.kill()
            proc.wait()
            raise
        if proc.poll() is None:
            break
        assert "Address already in use" in log.read_text(), log.read_text()
    else:
        pytest.fail("three pairs of free ports were taken before Mosquitto bound them")
    try:
        gw = "st-d-gw"
        ok = MqttSettings.from_url(f"mqtts://{gw}:{creds[gw]}@127.0.0.1:{tls}", str(ca))
        ingest = f"mqtt://waystation-ingest-1:{creds['waystation-ingest-1']}@127.0.0.1:{plain}"
        with MqttSpy(MqttSettings.from_url(ingest), "deploy-spy", ["stations/#"]) as spy:
            with MqttSpy(ok, gw, []) as agent:
                agent.publish("stations/st-d/st-d-door/telemetry", b"{}")
            wait_for(lambda: spy.on("/st-d-door/telemetry"), "the device's message over TLS")
        for url in (f"mqtts://127.0.0.1:{tls}", f"mqtt://127.0.0.1:{plain}"):
            assert connack(MqttSettings.from_url(url, str(ca))).is_failure  # anonymous
    finally:
        proc.terminate()
        proc.wait(10)


def _up(proc: subprocess.Popen[bytes], *ports: int) -> bool:
    """Mosquitto has exited, or listens on every port."""
    return proc.poll() is not None or all(_listening(p) for p in ports)


def _mosquitto() -> str:
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
