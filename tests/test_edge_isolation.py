"""An edge box installs `waystation[edge]` only: the agent must not need server-side packages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

# Packages only the `server` extra installs, and the server-side parts of the project.
SERVER_SIDE = [
    "urllib3",
    "influxdb_client",
    "rich",
    "ingest",
    "waystation.store",
    "re2",  # routes' regular expressions (google-re2)
]


def test_edge_agent_imports_and_runs_without_server_packages() -> None:
    script = textwrap.dedent(f"""
        import sys
        from importlib.abc import MetaPathFinder

        BLOCKED = {SERVER_SIDE!r}

        class Block(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                    raise ImportError(f"edge must not import {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import edge.agent, edge.simulation, edge.outbox, edge.config
        import edge.drivers.modbus.driver, edge.drivers.dlt645.driver, edge.drivers.pulse.driver
        from app.cli import main
        try:
            main(["edge", "--help"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        try:
            main(["edge", "--sample-config"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ("edge", "waystation")))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "edge.agent" in result.stdout
    assert "--station" in result.stdout
    assert "driver: {type: dlt645" in result.stdout  # the sample config printed


def test_edge_extra_declares_no_server_package() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    edge_deps = " ".join(project["dependencies"] + project["optional-dependencies"]["edge"]).lower()
    for pkg in ("urllib3", "influxdb", "rich", "apscheduler", "openpyxl", "grafana"):
        assert pkg not in edge_deps


def test_a_route_regex_checked_without_the_server_install_says_what_is_missing() -> None:
    """`check-config --rules-config` on an edge box: a clear error, not an ImportError."""
    script = textwrap.dedent("""
        import sys
        from importlib.abc import MetaPathFinder

        class Block(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "re2" or name.startswith("re2."):
                    raise ImportError(name)
                return None

        sys.meta_path.insert(0, Block())
        from rules.outage.config import RulesConfigError, parse_rules_config
        try:
            parse_rules_config({"route": {"channels": ["log"], "routes": [
                {"matchers": ['station =~ "a.*"'], "channels": ["log"]}]}}, "rules.yaml")
        except RulesConfigError as exc:
            print([p.code for p in exc.problems])
            print(exc)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "['regex_needs_server']" in result.stdout
    assert "need the server install (google-re2)" in result.stdout
