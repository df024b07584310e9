"""The README's edge install, run as written: `./dev wheel`, then the `edge` extra from that
wheel into a fresh virtual environment (from the package index), and its two commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[1]
WHEEL = "waystation-0.1.0-py3-none-any.whl"


def readme_install() -> list[str]:
    """The commands the README gives for a station box."""
    readme = (ROOT / "README.md").read_text("utf-8")
    blocks: list[str] = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    [block] = [b for b in blocks if "./dev wheel" in b and "[edge]" in b]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.fixture
def box() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="waystation-box-"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_the_edge_install_from_the_wheel_works(box: Path) -> None:
    lines = readme_install()
    assert lines[0] == "./dev wheel"
    built = subprocess.run(  # the repository's own entry point, building into the "box"
        [str(ROOT / "dev"), "wheel", str(box / "tmp")], capture_output=True, text=True,
        check=False, cwd=ROOT,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().endswith(f"tmp/{WHEEL}")
    moved = {"/tmp/": f"{box}/tmp/", "/opt/": f"{box}/opt/", "/etc/": f"{box}/etc/"}  # noqa: S108
    on_the_box = []
    for line in lines:
        if not line.startswith(("./dev", "scp ", "#", "systemctl ")):
            for path, into in moved.items():
                line = line.replace(path, into)  # noqa: PLW2901 - the same line, moved
            on_the_box.append(line)
    assert any("pip install" in line and "[edge]" in line for line in on_the_box)
    done = subprocess.run(
        ["/bin/bash", "-euo", "pipefail", "-c", "\n".join(on_the_box)], capture_output=True,
        text=True, check=False, cwd=box,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"OK: {box}/etc/waystation/agent.yaml (4 devices)" in done.stdout
    assert "no registry at stations.yaml" in done.stderr  # it says what it could not check
    venv = box / "opt" / "waystation"
    agent = (box / "etc" / "waystation" / "agent.yaml").read_text("utf-8")
    assert "agent_device: r01-gw-01" in agent
    # The edge extra only: nothing of the server's.
    freeze = subprocess.run(
        [str(venv / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "paho-mqtt" in freeze
    assert "pymodbus" in freeze
    for server_only in ("influxdb-client", "openpyxl", "apscheduler", "rich", "grafana"):
        assert server_only not in freeze
