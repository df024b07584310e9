"""The README's broker steps, run as written, on Debian's Mosquitto started as root.

The lines come from the README itself (only /etc, /opt and the port are moved
into a temp dir); Mosquitto is started the way Debian's service starts it, as
root with the package's own mosquitto.conf, and so switches to the user
`mosquitto` before it reads the password file.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from app.localservers import free_port
from tests.helpers import MqttSpy, connack, wait_for
from waystation.settings import MqttSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="starting Mosquitto as root needs root"),
]

ROOT = Path(__file__).parents[1]
DEBIAN_CONF = Path("/etc/mosquitto/mosquitto.conf")


def readme_steps() -> str:
    """The README's shell block that sets up the broker on Debian."""
    readme = (ROOT / "README.md").read_text("utf-8")
    blocks: list[str] = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    [block] = [b for b in blocks if "/etc/mosquitto/conf.d/waystation.conf" in b]
    return block


@pytest.fixture
def root_dir() -> Iterator[Path]:
    """A temp dir the `mosquitto` user may enter (mkdtemp's own is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="waystation-debian-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _debian_main_config(root: Path, etc: Path) -> Path:
    """Debian's mosquitto.conf with its paths moved under `root` (run dir owned by mosquitto)."""
    user = pwd.getpwnam("mosquitto")
    for sub in ("run", "var/lib/mosquitto"):
        (root / sub).mkdir(parents=True)
        os.chown(root / sub, user.pw_uid, user.pw_gid)
    conf = DEBIAN_CONF.read_text()
    assert "\nuser " not in conf  # started as root, it switches to the default: mosquitto
    conf = (
        conf.replace("/run/mosquitto/", f"{root}/run/")
        .replace("/var/lib/mosquitto/", f"{root}/var/lib/mosquitto/")
        .replace("log_dest file /var/log/mosquitto/mosquitto.log", "log_dest stderr")
        .replace("/etc/mosquitto", str(etc))
    )
    path = etc / "mosquitto.conf"
    path.write_text(conf)
    return path


def _start(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with log.open("wb") as out:
        return subprocess.Popen([mosquitto, "-c", str(conf)], stdout=out, stderr=out)


@pytest.mark.skipif(not DEBIAN_CONF.exists(), reason="needs the Debian mosquitto package")
def test_the_readme_broker_steps_work_on_debians_mosquitto(root_dir: Path) -> None:
    etc, opt = root_dir / "etc", root_dir / "opt"
    (etc / "waystation").mkdir(parents=True)
    (etc / "mosquitto" / "conf.d").mkdir(parents=True)
    (opt / "waystation" / "bin").mkdir(parents=True)
    (opt / "waystation" / "bin" / "waystation").symlink_to(
        Path(sys.executable).with_name("waystation")
    )
    registry = yaml.safe_load((ROOT / "app/data/demo-stations.yaml").read_text("utf-8"))
    (etc / "waystation" / "stations.yaml").write_text(yaml.safe_dump(registry), "utf-8")
    port = free_port()
    steps = (
        readme_steps()
        .replace("sudo ", "")  # this test runs as root
        .replace("systemctl restart mosquitto", "true")  # started below, as Debian's unit does
        .replace("/etc/", f"{etc}/")
        .replace("/opt/", f"{opt}/")
        .replace("listener 1883", f"listener {port} 127.0.0.1")
    )
    done = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", steps], cwd=ROOT, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "owned by mosquitto, mode 0600" in done.stdout
    broker = etc / "mosquitto" / "waystation"
    mosquitto = pwd.getpwnam("mosquitto").pw_uid
    assert {(broker / f).stat().st_uid for f in ("passwd", "acl")} == {mosquitto}
    assert (broker / "credentials.yaml").stat().st_uid == 0  # the secrets stay root's

    conf = _debian_main_config(root_dir, etc / "mosquitto")
    proc = _start(conf, root_dir / "mosquitto.log")
    try:
        creds = yaml.safe_load((broker / "credentials.yaml").read_text())
        gw = "r01-gw-01"
        device = MqttSettings.from_url(f"mqtt://{gw}:{creds[gw]}@127.0.0.1:{port}")
        ingest = MqttSettings.from_url(
            f"mqtt://waystation-ingest-1:{creds['waystation-ingest-1']}@127.0.0.1:{port}"
        )
        wait_for(lambda: _accepts(port) or proc.poll() is not None, "Mosquitto to listen", 20)
        assert proc.poll() is None, (root_dir / "mosquitto.log").read_text()
        # It runs as mosquitto, having dropped root.
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert re.search(rf"^Uid:\s+{mosquitto}\s", status, re.MULTILINE)
        with MqttSpy(ingest, "debian-spy", ["stations/#"]) as spy:
            with MqttSpy(device, gw, []) as agent:
                agent.publish("stations/dachuan-rider-01/r01-door-01/telemetry", b"{}")
            wait_for(lambda: spy.on("/r01-door-01/telemetry"), "the device's message")
        assert connack(MqttSettings.from_url(f"mqtt://127.0.0.1:{port}")).is_failure  # anonymous
    finally:
        proc.terminate()
        proc.wait(10)

    # What broker-config did before: passwd root's, 0600. Mosquitto cannot start.
    os.chown(broker / "passwd", 0, 0)
    failed = _start(conf, root_dir / "mosquitto-refused.log")
    assert failed.wait(20) == 13
    assert "Unable to open pwfile" in (root_dir / "mosquitto-refused.log").read_text()


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
