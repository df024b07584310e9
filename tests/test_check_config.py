"""`check-config` checks what each service will use, across files, and lists every problem;
each service runs the same checks at start-up and refuses to start on an error."""

from __future__ import annotations

import typing
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from app.cli import main
from edge.config import SAMPLE
from tests.allocation_helpers import PARTIES, own_tariff_dir, station_entry
from tests.helpers import station_data
from waystation.registry import Registry


def write(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def district(tmp_path: Path, **changes: Any) -> str:
    """A registry with parties and two stations, changed as the test says."""
    data: dict[str, Any] = {
        "version": 1,
        "tariff": "sichuan-general-commercial",
        "parties": PARTIES,
        "stations": {
            "st-a": station_entry("st-a", "enterprise_incubated"),
            "st-b": station_entry("st-b", "community_integrated"),
        },
    }
    data |= changes
    return write(tmp_path / "stations.yaml", data)


def test_what_passed_before_and_failed_later_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stations = {
        "st-a": station_entry("st-a", "enterprise_incubated"),
        "st-b": station_entry("st-b", "community_integrated"),
    }
    # A station without a gateway (no agent can serve it) and a timeout below the interval.
    del stations["st-b"]["devices"]["st-b-gw"]
    stations["st-a"]["devices"]["st-a-disp"] |= {"interval": "5m", "timeout": "2m"}
    path = district(tmp_path, tariff="dazhou-2026", stations=stations)
    code, out = run(capsys, "check-config", "--registry", path, "--influx", "localhost:8086")
    assert code == 2
    # Every problem of every file at once...
    assert "2 处错误 error(s), 0 处警告 warning(s)" in out
    assert "stations.yaml:" in out
    assert "station 'st-a', device 'st-a-disp': timeout" in out
    assert "timeout 2m is shorter than the reporting interval 5m" in out
    assert "InfluxDB URL 'localhost:8086' is not like http://host:8086" in out
    # ...and, once the files are valid, what only shows across them.
    stations["st-a"]["devices"]["st-a-disp"]["timeout"] = "15m"
    path = district(tmp_path, tariff="dazhou-2026", stations=stations)
    code, out = run(capsys, "check-config", "--registry", path)
    assert code == 2
    assert "1 处错误 error(s), 1 处警告 warning(s)" in out
    assert "stations.yaml:2:9 tariff" in out
    assert "tariff 'dazhou-2026' is not loaded: the shipped example tariffs" in out
    assert "警告 warning:" in out
    assert "station 'st-b'\n    站点没有 `kind: gateway` 设备" in out
    assert "no edge agent can serve it" in out


def test_the_tariffs_the_registry_names_are_loaded_from_tariffs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = own_tariff_dir(tmp_path / "tariffs")
    (own / "ours.yaml").write_text(
        (own / "ours.yaml")
        .read_text("utf-8")
        .replace("id: sichuan-general-commercial", "id: dazhou-2026"),
        "utf-8",
    )
    path = district(tmp_path, tariff="dazhou-2026")
    code, out = run(capsys, "check-config", "--registry", path, "--tariffs", str(own))
    assert code == 0
    assert "tariffs dazhou-2026" in out
    assert "warning" not in out
    # A broken tariff file is read and reported too.
    (own / "broken.yaml").write_text("id: broken\nname: x\nversions: []\n", "utf-8")
    code, out = run(capsys, "check-config", "--registry", path, "--tariffs", str(own))
    assert code == 2
    assert "broken.yaml:3:11 versions\n    至少需要 1 项" in out


def test_sub_meters_without_a_main_meter_are_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stations = {"st-a": station_entry("st-a", "enterprise_incubated")}
    meter = stations["st-a"]["devices"].pop("st-a-meter")
    stations["st-a"]["devices"]["st-a-sub"] = meter | {"role": "sub"}
    path = district(tmp_path, stations=stations, tariff=None)
    own = own_tariff_dir(tmp_path / "tariffs")
    code, out = run(capsys, "check-config", "--registry", path, "--tariffs", str(own))
    assert code == 0
    assert "station has electricity sub-meters but no main electricity meter" in out
    assert "站点有电分表但没有电总表" in out
    assert "OK: " in out


def agent_config(tmp_path: Path, change: dict[str, Any]) -> str:
    data = yaml.safe_load(SAMPLE) | change
    return write(tmp_path / "agent.yaml", data)


def sample_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["sample-registry"]) == 0
    path = tmp_path / "stations.yaml"
    path.write_text(capsys.readouterr().out, "utf-8")
    return str(path)


def test_an_agent_config_is_checked_against_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = sample_registry(tmp_path, capsys)
    sample = yaml.safe_load(SAMPLE)
    devices = sample["devices"]
    devices["r01-ghost"] = {"kind": "door_counter", "driver": {"type": "simulator"}}
    devices["r03-door-01"] = {"kind": "door_counter", "driver": {"type": "simulator"}}
    devices["r01-door-01"]["interval"] = "10m"  # the registry calls it silent after 3m
    devices["r01-locker-01"]["kind"] = "water_dispenser"
    del devices["r01-disp-01"]
    path = agent_config(tmp_path, {"devices": devices, "timezone": "Asia/Urumqi"})
    code, out = run(capsys, "check-config", "--registry", registry, "--agent-config", path)
    assert code == 2
    assert "4 处错误 error(s), 2 处警告 warning(s)" in out
    assert "EXAMPLE prices" not in out  # an edge box's check: the tariff is not its concern
    assert "'r01-ghost' is not in the registry: ingest would dead-letter every reading as" in out
    assert "device 'r03-door-01' belongs to station 'dachuan-rider-03'" in out
    assert "the registry has 'r01-locker-01' as a charging_locker" in out
    assert "device 'r01-door-01': interval" in out
    assert "the agent reads it every 10m, but the registry calls it silent after 3m" in out
    assert "device(s) r01-water-main, r01-disp-01 at this station that this agent" in out
    assert "the agent's time zone Asia/Urumqi is not the station's Asia/Shanghai" in out
    # The agent's identity must be the station's gateway.
    path = agent_config(tmp_path, {"agent_device": "r01-water-main"})
    code, out = run(capsys, "check-config", "--registry", registry, "--agent-config", path)
    assert code == 2
    assert "agent.yaml:3:15 agent_device" in out
    assert "'r01-water-main' is a meter in the registry, not the station's `kind: gateway`" in out
    assert "name the station's gateway (r01-gw-01)" in out


def test_a_meter_read_as_another_utility_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A water meter mapped as energy passed: its water was then billed as main_meter_silent."""
    registry = sample_registry(tmp_path, capsys)
    sample = yaml.safe_load(SAMPLE)
    energy = {"energy_kwh_total": {"address": 0, "type": "uint32", "scale": 0.01}}
    sample["devices"]["r01-water-main"] = {
        "kind": "meter",
        "driver": {"type": "modbus", "host": "192.168.1.52", "registers": energy},
    }
    path = agent_config(tmp_path, {"devices": sample["devices"]})
    code, out = run(capsys, "check-config", "--registry", registry, "--agent-config", path)
    assert code == 2
    assert "device 'r01-water-main': driver" in out
    assert ("the registry has 'r01-water-main' as a water meter, but its modbus driver reads "
            "electricity") in out  # fmt: skip
    assert "登记文件中 'r01-water-main' 是水表，但modbus 驱动读的是电" in out
    # A DL/T 645 meter is electricity, whatever the agent forgot to say.
    sample["devices"]["r01-water-main"] = {
        "kind": "meter",
        "driver": {"type": "dlt645", "host": "192.168.1.52", "address": "000012345679"},
    }
    path = agent_config(tmp_path, {"devices": sample["devices"]})
    code, out = run(capsys, "check-config", "--registry", registry, "--agent-config", path)
    assert code == 2
    assert "as a water meter, but its dlt645 driver reads electricity" in out
    # Mapped as water, it passes.
    water = {"water_m3_total": {"address": 0, "type": "uint32", "scale": 0.001}}
    sample["devices"]["r01-water-main"]["driver"] = {
        "type": "modbus", "host": "192.168.1.52", "registers": water,
    }  # fmt: skip
    path = agent_config(tmp_path, {"devices": sample["devices"]})
    code, out = run(capsys, "check-config", "--registry", registry, "--agent-config", path)
    assert "r01-water-main" not in out
    assert code == 0


def test_an_agent_interval_other_than_the_registry_s_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read every 15m, registered at 60s (with a long timeout): the report read it hourly."""
    data = yaml.safe_load(Path(sample_registry(tmp_path, capsys)).read_text("utf-8"))
    meter = data["stations"]["dachuan-rider-01"]["devices"]["r01-meter-main"]
    meter["timeout"] = "1h"
    registry = write(tmp_path / "stations.yaml", data)
    sample = yaml.safe_load(SAMPLE)
    sample["devices"]["r01-meter-main"]["interval"] = "15m"
    path = agent_config(tmp_path, {"devices": sample["devices"]})
    code, out = run(capsys, "check-config", "--registry", registry, "--agent-config", path)
    assert code == 0
    assert "警告 warning: " in out
    assert "device 'r01-meter-main': interval" in out
    assert "the agent reads it every 15m, the registry says `interval: 1m`" in out
    assert "write `interval: 15m` for 'r01-meter-main' in stations.yaml" in out
    assert "代理每 15m 读取一次" in out
    meter["interval"] = "15m"
    write(tmp_path / "stations.yaml", data)
    code, out = run(capsys, "check-config", "--registry", registry, "--agent-config", path)
    assert (code, "r01-meter-main" in out) == (0, False)


def test_each_service_runs_the_same_checks_at_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before connecting to anything (the broker and InfluxDB here do not exist)."""
    registry = sample_registry(tmp_path, capsys)
    nowhere = ["--mqtt", "mqtt://127.0.0.1:1", "--influx", "http://127.0.0.1:1"]
    code, out = run(capsys, "ingest", "--registry", registry, "--influx", "localhost:8086")
    assert code == 2
    assert "waystation ingest: " in out
    assert "InfluxDB URL 'localhost:8086' is not like http://host:8086" in out
    sample = yaml.safe_load(SAMPLE)
    sample["devices"]["r01-ghost"] = {"kind": "door_counter"}
    ghost = write(tmp_path / "agent.yaml", sample)
    code, out = run(capsys, "edge", "--registry", registry, "--agent-config", ghost, *nowhere)
    assert code == 2
    assert "device 'r01-ghost' is not in the registry" in out
    code, out = run(capsys, "edge", "--registry", registry, "--station", "dachuan-rider-09")
    assert code == 2
    assert "station 'dachuan-rider-09' is not in the registry" in out
    # rules: the registry has parties, so the monthly job would bill: example prices refused.
    code, out = run(capsys, "rules", "--registry", registry, *nowhere)
    assert code == 2
    assert "'sichuan-general-commercial' holds EXAMPLE prices: the monthly allocation job" in out
    assert "--no-allocation" in out
    code, out = run(capsys, "report", "--schedule", "--registry", registry, *nowhere)
    assert code == 2
    assert "holds EXAMPLE prices" in out
    rules = tmp_path / "rules.yaml"
    rules.write_text("channels: [{type: wecom, url: 'qyapi.weixin.qq.com/send?key=k'}]\n")
    code, out = run(capsys, "rules", "--registry", registry, "--rules-config", str(rules),
                    "--no-allocation", *nowhere)  # fmt: skip
    assert code == 2
    assert "rules.yaml:1:31 channel 1: url" in out
    assert "is not a URL like https://host/path" in out


def _keys(model: type[BaseModel]) -> dict[str, set[str]]:
    """Every key each model of the registry can hold, by model name."""
    out: dict[str, set[str]] = {}
    todo: list[Any] = [model]
    while todo:
        tp = todo.pop()
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in out:
                continue
            out[tp.__name__] = set(tp.model_fields)
            todo += [f.annotation for f in tp.model_fields.values()]
        else:
            todo += list(typing.get_args(tp))
    return out


def _used(data: Any, model: Any, found: dict[str, set[str]]) -> None:
    if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(data, dict):
        found.setdefault(model.__name__, set()).update(data)
        for key, value in data.items():
            if key in model.model_fields:
                _used(value, model.model_fields[key].annotation, found)
        return
    for arg in typing.get_args(model):
        if isinstance(data, dict) and typing.get_origin(model) is dict:
            for value in data.values():
                _used(value, typing.get_args(model)[1], found)
            return
        _used(data, arg, found)


def test_the_sample_registry_uses_every_key() -> None:
    text = files("app").joinpath("data/demo-stations.yaml").read_text("utf-8")
    found: dict[str, set[str]] = {}
    _used(yaml.safe_load(text), Registry, found)
    missing = {name: keys - found.get(name, set()) for name, keys in _keys(Registry).items()}
    assert {name: keys for name, keys in missing.items() if keys} == {}


def test_a_station_data_helper_registry_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "r.yaml", {"version": 1, "stations": station_data("st-z")})
    assert run(capsys, "check-config", "--registry", path)[0] == 0


def test_a_setting_from_the_config_file_is_named_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`influx: localhost:8086` in --config was reported as `--influx / WAYSTATION_INFLUX`."""
    registry = district(tmp_path)
    config = tmp_path / "waystation.yaml"
    config.write_text(
        "mqtt: mqtts://127.0.0.1:8883\nmqtt_ca: /nowhere/ca.pem\ninflux: localhost:8086\n", "utf-8"
    )
    code, out = run(capsys, "check-config", "--registry", registry, "--config", str(config))
    assert code == 2
    assert f"{config}:3:9 influx (--config)\n" in out
    assert "give the scheme, host and port in influx (--config)" in out
    assert f"{config}:2:10 mqtt_ca (--config)\n" in out
    assert "CA certificate /nowhere/ca.pem does not exist" in out
    assert "--influx / WAYSTATION_INFLUX" not in out
    # The environment wins over the file, and is named instead.
    monkeypatch.setenv("WAYSTATION_INFLUX", "http://127.0.0.1:8086/api/v2")
    code, out = run(capsys, "check-config", "--registry", registry, "--config", str(config))
    assert "错误 error: WAYSTATION_INFLUX\n" in out
    assert "names an API path (/api/v2)" in out
    # And a flag over both.
    code, out = run(capsys, "check-config", "--registry", registry, "--config", str(config),
                    "--influx", "influx.local:8086")  # fmt: skip
    assert "错误 error: --influx\n" in out
    assert "'influx.local:8086' is not like http://host:8086" in out
