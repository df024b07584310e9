"""The command line: check-config accepts a good registry and explains a broken one."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main


def test_check_config_accepts_the_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample-registry"]) == 0
    sample = capsys.readouterr().out
    path = tmp_path / "stations.yaml"
    path.write_text(sample, encoding="utf-8")
    assert main(["check-config", "--registry", str(path)]) == 0
    captured = capsys.readouterr()
    assert (
        f"OK: {path} (5 stations, 30 devices), tariffs sichuan-general-commercial" in captured.out
    )
    # Its tariff is the shipped one: valid, but its prices are examples, and it says so.
    assert "1 处警告 warning(s)" in captured.out
    assert "holds EXAMPLE prices: `rules` and `report --schedule` refuse" in captured.err


def test_check_config_rejects_a_broken_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stations.yaml"
    path.write_text(
        "version: 1\nstations:\n  st-a:\n    name: A\n    model: enterprise_incubated\n"
        "    devices:\n      a-disp: {kind: water_dispenser, interval: sometimes}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("WAYSTATION_REGISTRY", str(path))  # through the environment this time
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7:49 station 'st-a', device 'a-disp': interval" in err
    assert "'sometimes' is not a duration" in err


def test_check_config_rejects_a_bad_broker_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample-registry"]) == 0
    path = tmp_path / "stations.yaml"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["check-config", "--registry", str(path), "--mqtt", "tcp://broker:1883"]) == 2
    assert "mqtt://" in capsys.readouterr().err


def test_edge_refuses_an_unknown_station(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample-registry"]) == 0
    path = tmp_path / "stations.yaml"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["edge", "--registry", str(path), "--station", "nowhere"]) == 2
    assert "'nowhere' is not in the registry" in capsys.readouterr().err


def test_broker_config_writes_the_three_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample-registry"]) == 0
    registry = tmp_path / "stations.yaml"
    registry.write_text(capsys.readouterr().out, encoding="utf-8")
    out = tmp_path / "broker"
    assert main(["broker-config", "--registry", str(registry), "--out", str(out)]) == 0
    assert "30 devices" in capsys.readouterr().out
    acl = (out / "acl").read_text()
    assert "user r01-gw-01\ntopic write stations/dachuan-rider-01/#" in acl
    assert "user r01-disp-01\ntopic write stations/dachuan-rider-01/r01-disp-01/#" in acl
    assert len((out / "passwd").read_text().splitlines()) == 30 + 2  # devices + services
