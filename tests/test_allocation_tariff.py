"""Tariffs: Sichuan's 2023 period table, month overrides, versions, and clear errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from rules.allocation.tariff import Period, TariffError, load_tariffs, parse_tariff, shipped_tariffs

P, F, V, S = Period.PEAK, Period.FLAT, Period.VALLEY, Period.SHARP

# SPEC §8: peak 10-12 and 15-21, flat 7-10, 12-15 and 21-23, valley 23-7.
SICHUAN_BASE = (V,) * 7 + (F,) * 3 + (P,) * 2 + (F,) * 3 + (P,) * 6 + (F,) * 2 + (V,)


def _tariff(**electricity: object) -> dict[str, object]:
    base: dict[str, object] = {
        "prices": {"peak": "1", "flat": "0.5"},
        "periods": {"peak": ["8-20"], "flat": ["20-8"]},
    }
    return {
        "id": "t",
        "name": "test",
        "versions": [
            {
                "valid_from": "2024-01-01",
                "electricity": base | electricity,
                "water": {"supply": "2.5", "sewage": "1", "resource_fee": "0.25"},
            }
        ],
    }


def test_shipped_sichuan_tables_follow_the_2023_periods() -> None:
    tariff = shipped_tariffs()["sichuan-general-commercial"]
    version = tariff.version_for(date(2026, 10, 1))
    assert version.electricity.table(10) == SICHUAN_BASE
    assert version.electricity.table(6) == SICHUAN_BASE
    for month, sharp in ((7, (15, 16)), (8, (15, 16)), (1, (19, 20)), (12, (19, 20))):
        table = version.electricity.table(month)
        assert [h for h, p in enumerate(table) if p is S] == list(sharp)
        # Only the critical-peak hours change; the rest is the base table.
        assert all(table[h] == SICHUAN_BASE[h] for h in range(24) if h not in sharp)
    assert "EXAMPLE" in tariff.note
    assert version.water.price == Decimal("3.75")


def test_no_version_before_the_first() -> None:
    tariff = shipped_tariffs()["sichuan-general-commercial"]
    with pytest.raises(TariffError, match="no version for 2023-05"):
        tariff.version_for(date(2023, 5, 1))


def test_versions_are_chosen_by_month() -> None:
    data = _tariff()
    first = data["versions"][0]  # type: ignore[index]
    second = first | {"valid_from": "2025-07-01", "water": {"supply": "9"}}
    data["versions"] = [second, first]
    tariff = parse_tariff(data, "t.yaml")
    assert tariff.version_for(date(2025, 6, 1)).water.price == Decimal("3.75")
    assert tariff.version_for(date(2025, 7, 1)).water.price == Decimal(9)


@pytest.mark.parametrize(
    ("electricity", "message"),
    [
        ({"periods": {"peak": ["8-20"], "flat": ["19-8"]}}, "hour 19 is in both"),
        ({"periods": {"peak": ["8-20"], "flat": ["21-8"]}}, r"hours \[20\] belong to no period"),
        ({"periods": {"peak": ["0-24"]}}, "2 to 4 periods"),
        ({"prices": {"peak": "1"}}, "no price for period"),
        ({"months": {"7": {"sharp": ["15-17"]}}}, "month 7: no price for period\\(s\\) sharp"),
        ({"months": {"13": {"peak": ["1-2"]}}}, "not a list of months like 7,8 \\(1 to 12\\)"),
        ({"periods": {"peak": ["8-25"], "flat": ["20-8"]}}, "not an hour range"),
        (
            {"prices": {"peak": "-1", "flat": "0.5"}},
            "electricity.prices.peak\n.*\n    '-1' must be >= 0",
        ),
    ],
)
def test_invalid_tables_are_refused_with_the_reason(
    electricity: dict[str, object], message: str
) -> None:
    with pytest.raises(TariffError, match=message):
        parse_tariff(_tariff(**electricity), "t.yaml")


def test_version_must_start_on_the_first(tmp_path: Path) -> None:
    data = _tariff()
    data["versions"][0]["valid_from"] = "2024-01-15"  # type: ignore[index]
    with pytest.raises(TariffError, match="first day of a month"):
        parse_tariff(data, "t.yaml")
    (tmp_path / "bad.yaml").write_text("id: [", encoding="utf-8")
    (tmp_path / "worse.yaml").write_text("id: ok\nid: twice\n", encoding="utf-8")
    with pytest.raises(TariffError) as info:
        load_tariffs([tmp_path])
    # Every file's problems at once, each with its line.
    assert "bad.yaml:1:6\n    YAML 格式错误" in str(info.value)
    assert "worse.yaml:2:1 id\n    键 'id' 出现了两次" in str(info.value)


SHIPPED = Path(__file__).parents[1] / "rules/allocation/tariffs/sichuan-general-commercial.yaml"


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED.read_text("utf-8")
    assert old in text
    path = tmp_path / "own.yaml"
    path.write_text(text.replace(old, new), "utf-8")
    return path


def test_overlapping_hours_in_a_month_override_are_refused(tmp_path: Path) -> None:
    """August's critical peak 15-17 overlapped by peak 16-18 billed hour 16 as peak, silently."""
    path = _edited(tmp_path, "7,8: {sharp: [15-17]}", "7,8: {sharp: [15-17], peak: [16-18]}")
    with pytest.raises(TariffError) as info:
        load_tariffs([path])
    [problem] = info.value.problems
    assert (problem.line, problem.code) == (_line(path, "7,8:"), "hour_twice")
    assert "hour 16 is in both sharp and peak" in problem.what.en
    assert "16 点同时属于 sharp 和 peak" in problem.what.zh


def test_a_month_under_two_keys_is_refused(tmp_path: Path) -> None:
    path = _edited(
        tmp_path, "1,12: {sharp: [19-21]}", '1,12: {sharp: [19-21]}\n        "8": {sharp: [19-21]}'
    )
    with pytest.raises(TariffError) as info:
        load_tariffs([path])
    [problem] = info.value.problems
    assert (problem.line, problem.code) == (_line(path, '"8":'), "month_twice")
    assert "month 8 is under both '7,8' and '8'" in problem.what.en
    assert "8 月同时出现在" in problem.what.zh


def test_a_single_month_key_needs_no_quotes(tmp_path: Path) -> None:
    """`8:` is a number to YAML; it was refused as "not text"."""
    path = _edited(
        tmp_path, "7,8: {sharp: [15-17]}", "7: {sharp: [15-17]}\n        8: {sharp: [15-17]}"
    )
    version = load_tariffs([path])["sichuan-general-commercial"].version_for(date(2026, 8, 1))
    assert [h for h, p in enumerate(version.electricity.table(8)) if p is S] == [15, 16]
    assert version.electricity.table(9) == SICHUAN_BASE
    bad = _edited(tmp_path, "7,8: {sharp: [15-17]}", "13: {sharp: [15-17]}")
    with pytest.raises(TariffError, match="13 is not a list of months"):
        load_tariffs([bad])


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text("utf-8").splitlines(), 1) if text in line)


def test_the_whole_config_directory_as_tariffs(tmp_path: Path) -> None:
    """`--tariffs /etc/waystation` gave 16 errors about the registry and the rules config."""
    (tmp_path / "stations.yaml").write_text("version: 1\nstations: {}\n", "utf-8")
    (tmp_path / "rules.yaml").write_text("language: zh\nchannels: []\n", "utf-8")
    (tmp_path / "sichuan.yml").write_text(SHIPPED.read_text("utf-8"), "utf-8")  # .yml too
    assert list(load_tariffs([tmp_path])) == ["sichuan-general-commercial"]
    with pytest.raises(TariffError) as info:
        load_tariffs([tmp_path / "stations.yaml"])
    [problem] = info.value.problems
    assert problem.code == "not_a_tariff"
    assert "not a tariff file: it looks like the station registry" in problem.what.en
    assert "不是电价文件：看起来是站点登记文件" in problem.what.zh
    (tmp_path / "sichuan.yml").unlink()
    with pytest.raises(TariffError, match=r"no tariff files \(\*.yaml, \*.yml\)"):
        load_tariffs([tmp_path])
