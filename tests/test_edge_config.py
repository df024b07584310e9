"""The agent config: the shipped sample is valid, and mistakes name the device and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from edge.config import SAMPLE, AgentConfig, AgentConfigError, load_agent_config, parse_agent_config
from edge.drivers import DRIVERS, DriverSite, build_driver
from edge.drivers.modbus.config import ModbusConfig
from edge.drivers.simulator.driver import SharedSimulation, SimulatorDriver
from edge.simulation import StationSimulation
from tests.helpers import station_registry


def sample() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SAMPLE)
    return data


def test_the_sample_is_valid() -> None:
    config = parse_agent_config(sample(), "sample")
    assert config.station == "dachuan-rider-01"
    disp = config.devices["r01-disp-01"].driver
    assert isinstance(disp, ModbusConfig)
    assert disp.registers["temp_c"].scale == 0.1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["devices"]["r01-disp-01"]["driver"]["registers"].update(
            {"temperature": {"address": 9}}), ["device 'r01-disp-01'", "no field(s) ['temperature']"]),
        (lambda c: c["devices"]["r01-disp-01"]["driver"]["registers"].pop("heating"),
         ["device 'r01-disp-01'", "lacks required field(s) ['heating']"]),
        (lambda c: c["devices"]["r01-door-01"].update({"kind": "meter"}),
         ["device 'r01-door-01'", "pulse driver reads door_counter, not meter"]),
        (lambda c: c["devices"]["r01-meter-main"]["driver"].pop("host"),
         ["device 'r01-meter-main'", "needs `host`"]),
        (lambda c: c["devices"]["r01-meter-main"]["driver"].update({"address": "12"}),
         ["device 'r01-meter-main': driver.address"]),
        (lambda c: c["devices"]["r01-disp-01"].update({"interval": "often"}),
         ["device 'r01-disp-01': interval", "not a duration"]),
        (lambda c: c["devices"].update({"r01-gw-01": {"kind": "gateway"}}),
         ["is the agent itself"]),
        (lambda c: c["devices"]["r01-locker-01"]["driver"].update({"type": "telepathy"}),
         ["device 'r01-locker-01'", "telepathy"]),
        (lambda c: c["outbox"].update({"max_readings": 0}), ["outbox.max_readings"]),
    ],
)  # fmt: skip
def test_mistakes_are_located(change: Any, expected: list[str]) -> None:
    data = sample()
    change(data)
    with pytest.raises(AgentConfigError) as info:
        parse_agent_config(data, "agent.yaml")
    for part in expected:
        assert part in str(info.value)


def test_load_from_file_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(SAMPLE)
    assert load_agent_config(path).agent_device == "r01-gw-01"
    with pytest.raises(AgentConfigError, match="absent"):
        load_agent_config(tmp_path / "absent.yaml")


def test_from_registry_simulates_every_device_but_the_gateway(tmp_path: Path) -> None:
    registry = station_registry("st-r")
    config = AgentConfig.from_registry(registry, "st-r", outbox=tmp_path / "o.db")
    assert config.agent_device == "st-r-gw"
    assert set(config.devices) == set(registry.stations["st-r"].devices) - {"st-r-gw"}
    assert all(d.driver.type == "simulator" for d in config.devices.values())
    assert config.devices["st-r-water"].utility == "water"
    with pytest.raises(AgentConfigError, match="not in the registry"):
        AgentConfig.from_registry(registry, "elsewhere", outbox=tmp_path / "o.db")


def test_every_driver_is_built_through_the_table_the_simulator_too() -> None:
    config = parse_agent_config(sample(), "sample")
    by_type = {d.driver.type: d.driver for d in config.devices.values()}
    assert set(by_type) == set(DRIVERS) == {"simulator", "modbus", "dlt645", "pulse"}
    for name, row in DRIVERS.items():
        assert isinstance(by_type[name], row.config)  # the `driver:` union is the table's
    sim = SharedSimulation(StationSimulation({}, datetime.now(UTC), ZoneInfo("Asia/Shanghai")))
    locker = build_driver(by_type["simulator"], DriverSite("r01-locker-01", sim))
    assert isinstance(locker, SimulatorDriver)
    assert locker.shared is sim
    with pytest.raises(ValueError, match="no simulation"):
        build_driver(by_type["simulator"], DriverSite("r01-locker-01"))
