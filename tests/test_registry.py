"""The registry: the shipped example loads, and every mistake is located."""

from __future__ import annotations

from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import pytest

from waystation.contract import Kind
from waystation.durations import parse_duration
from waystation.registry import RegistryError, Role, Utility, load_registry, parse_opening_hours

GOOD_STATION = """\
  st-a:
    name: 驿站 A
    model: community_integrated
    devices:
      a-meter: {kind: meter, utility: electricity}
      a-gw: {kind: gateway, interval: 5m}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stations.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_example_loads() -> None:
    path = Path(str(files("app").joinpath("data/demo-stations.yaml")))
    reg = load_registry(path)
    assert len(reg.stations) == 5
    station, spec = reg.device("r01-meter-main") or ("", None)
    assert station == "dachuan-rider-01"
    assert spec is not None
    assert (spec.kind, spec.utility, spec.role) == (Kind.METER, Utility.ELECTRICITY, Role.MAIN)
    assert reg.device("nope") is None
    assert str(reg.station_timezone("dachuan-rider-01")) == "Asia/Shanghai"


def test_defaults_and_durations(tmp_path: Path) -> None:
    reg = load_registry(write(tmp_path, "version: 1\nstations:\n" + GOOD_STATION))
    assert reg.stations["st-a"].devices["a-meter"].interval == timedelta(seconds=60)
    assert reg.stations["st-a"].devices["a-gw"].interval == timedelta(minutes=5)
    assert parse_duration("1.5h") == timedelta(minutes=90)
    for bad in ("soon", "-5s", "0s", True):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


@pytest.mark.parametrize("bare", ["60", "15", "0.5"])
def test_a_duration_without_a_unit_is_refused(tmp_path: Path, bare: str) -> None:
    """`interval: 15` meant 15 minutes as often as 15 seconds: say which units there are."""
    text = GOOD_STATION.replace("a-gw: {kind: gateway, interval: 5m}",
                                f"a-gw: {{kind: gateway, interval: {bare}}}")  # fmt: skip
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, "version: 1\nstations:\n" + text))
    [problem] = info.value.problems
    assert (problem.line, problem.code) == (8, "duration_without_unit")
    assert f"{float(bare):g} has no unit" in problem.what.en
    assert "没有单位" in problem.what.zh
    assert problem.fix is not None
    assert f"{float(bare):g}s, {float(bare):g}m or {float(bare):g}h" in problem.fix.en


def test_a_sub_meter_without_its_role_is_refused(tmp_path: Path) -> None:
    """A forgotten `role: sub` made the shop's meter a second main one, billed on top."""
    text = GOOD_STATION + "      a-shop: {kind: meter, utility: electricity}\n"
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, "version: 1\nstations:\n" + text))
    problems = info.value.problems
    assert [(p.line, p.code) for p in problems] == [(7, "two_main_meters"), (9, "two_main_meters")]
    assert "2 main electricity meters (a-meter, a-shop) would be added together" in (
        problems[1].what.en
    )
    assert "'a-shop' has no `role`" in problems[1].what.en
    assert "电总表" in problems[1].what.zh
    assert problems[1].fix is not None
    assert "write `role: sub`" in problems[1].fix.en
    assert "role: sub" in problems[1].fix.zh
    # Saying it of one is enough to name the other: only the one left to default is blamed.
    sub = text.replace("a-meter: {kind: meter, utility: electricity}",
                       "a-meter: {kind: meter, utility: electricity, role: main}")  # fmt: skip
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, "version: 1\nstations:\n" + sub))
    assert [p.line for p in info.value.problems] == [9]


def test_two_supplies_say_so_and_are_accepted(tmp_path: Path) -> None:
    text = GOOD_STATION.replace(
        "a-meter: {kind: meter, utility: electricity}",
        "a-meter: {kind: meter, utility: electricity, role: main}\n"
        "      a-meter2: {kind: meter, utility: electricity, role: main}\n"
        "      a-shop: {kind: meter, utility: electricity, role: sub}\n"
        "      a-water: {kind: meter, utility: water}",
    )
    reg = load_registry(write(tmp_path, "version: 1\nstations:\n" + text))
    roles = {d: s.role for d, s in reg.stations["st-a"].devices.items() if s.kind is Kind.METER}
    assert roles == {"a-meter": Role.MAIN, "a-meter2": Role.MAIN, "a-shop": Role.SUB,
                     "a-water": Role.MAIN}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\nstations:\n  st-a:\n    name: A\n    model: franchise\n    devices:\n"
            "      a-gw: {kind: gateway}\n",
            [":5:12 station 'st-a': model", "community_integrated"],
        ),
        (
            "version: 1\nstations:\n  st-a:\n    name: A\n    model: industry_managed\n    devices:\n"
            "      a-m: {kind: meter}\n",
            [":7:12 station 'st-a', device 'a-m'", "utility: electricity", "电表"],
        ),
        (
            "version: 1\nstations:\n  st-a:\n    name: A\n    model: industry_managed\n    devices:\n"
            "      a-d: {kind: door_counter, utility: water}\n",
            [":7:12 station 'st-a', device 'a-d'", "apply to meters", "只用于电表"],
        ),
        (
            "version: 1\nstations:\n  st-a:\n    name: A\n    model: industry_managed\n    devices:\n"
            "      a-d: {kind: door_counter, interval: often}\n",
            [":7:43 station 'st-a', device 'a-d': interval", "not a duration", "不是时长"],
        ),
        (
            "version: 1\nstations:\n  st-a:\n    name: A\n    model: industry_managed\n    devices:\n"
            "      Bad_Id: {kind: gateway}\n",
            [":7:7 station 'st-a', device 'Bad_Id'", "not a valid id", "lower-case"],
        ),
        (
            "version: 1\nstations:\n  st-a:\n    name: A\n    model: industry_managed\n    devices:\n"
            "      a-d: {kind: door_counter, colour: red}\n",
            [
                ":7:33 station 'st-a', device 'a-d': colour",
                "unknown key 'colour'",
                "未知的键",
                "interval, max_rate",
            ],
        ),
        (
            "version: 1\nstations:\n  st-a:\n    name: A\n    model: industry_managed\n"
            "    timezone: Mars/Olympus\n    devices:\n      a-d: {kind: gateway}\n",
            [":6:15 station 'st-a': timezone", "Mars/Olympus", "Asia/Shanghai"],
        ),
        (
            "version: 2\nstations:\n" + GOOD_STATION,
            [":1:10 version", "not supported", "version: 1"],
        ),
        (
            "version: 1\nstations:\n" + GOOD_STATION + GOOD_STATION.replace("st-a", "st-b"),
            [
                ":13:7 station 'st-b', device 'a-meter'",
                "also used by station 'st-a'",
                ":14:7 station 'st-b', device 'a-gw'",
            ],
        ),
        (
            "version: 1\nstations:\n" + GOOD_STATION + GOOD_STATION,
            [":9:3 station 'st-a'", "appears twice (lines 3 and 9)", "出现了两次"],
        ),
        ("version: 1\nstations: [\n", [":3:1", "not valid YAML", "YAML 格式错误"]),
        ("- just a list\n", ["key: value` lines at the top"]),
    ],
)
def test_errors_name_file_station_device_and_field(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="WAYSTATION_REGISTRY"):
        load_registry(tmp_path / "absent.yaml")


@pytest.mark.parametrize("hours", ["07:60-23:00", "07:00-23:75", "25:00-06:00", "7-22"])
def test_opening_hours_out_of_the_clock_are_refused(tmp_path: Path, hours: str) -> None:
    """`07:60` was read as 08:00."""
    text = GOOD_STATION.replace("    devices:\n", f'    opening_hours: "{hours}"\n    devices:\n')
    with pytest.raises(RegistryError) as info:
        load_registry(write(tmp_path, "version: 1\nstations:\n" + text))
    [problem] = info.value.problems
    assert problem.line == 6
    assert f"{hours!r} is not opening hours like 07:00-22:00" in problem.what.en
    assert parse_opening_hours("07:59-24:00") == (479, 1440)
