"""The registry's allocation part: parties, roles and policies, checked when it is loaded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.allocation_helpers import PARTIES, station_entry
from waystation.parties import ResidualBasis, default_policy
from waystation.registry import RegistryError, parse_registry


def load(station: dict[str, Any], **top: Any) -> Any:
    return parse_registry({"version": 1, "parties": PARTIES, "stations": {"s": station}, **top})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"operator": "ghost"},
            "station 's': operator\n.*operator 'ghost' 不在.*\n.*is not among the registry's parties",
        ),
        (
            {"policy": {"loads": "ghost"}},
            "station 's': policy.loads\n.*\n    'ghost' is neither a role",
        ),
        ({"policy": {"devices": {"s-door": "union"}}}, "'s-door' is not a measured load"),
        (
            {"policy": {"residual": {"by": "visits", "shares": {"union": "s-meter"}}}},
            "'s-meter' is not a door counter",
        ),
        (
            {"policy": {"residual": {"by": "visits", "shares": {"union": 1}}}},
            "maps each party to its door counter",
        ),
        (
            {"policy": {"residual": {"by": "floor_area", "shares": {"union": "s-door"}}}},
            "needs numeric weights",
        ),
        (
            {"policy": {"residual": {"shares": {"union": 0}}}},
            "station 's': policy.residual.shares.union\n.*\n    0 must be > 0",
        ),
        ({"policy": {"residual": {"shares": {}}}}, "at least one party"),
    ],
)
def test_wrong_allocation_settings_are_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        load(station_entry("s", "enterprise_incubated") | change)


def test_operator_is_needed_when_the_policy_names_it() -> None:
    entry = station_entry("s", "enterprise_incubated")
    del entry["operator"]
    with pytest.raises(RegistryError, match="names `operator`, but the station has none"):
        load(entry)


def test_union_must_be_named_when_there_are_two() -> None:
    parties = PARTIES | {"other-union": {"name": "另一工会", "type": "union"}}
    entry = station_entry("s", "industry_managed")
    with pytest.raises(RegistryError, match="must name its `union`"):
        parse_registry({"version": 1, "parties": parties, "stations": {"s": entry}})
    entry["union"] = "other-union"
    registry = parse_registry({"version": 1, "parties": parties, "stations": {"s": entry}})
    assert registry.party("s", "union") == "other-union"


def test_policy_comes_from_station_then_registry_then_the_model() -> None:
    own = {"loads": "union", "residual": {"by": "opening_hours", "shares": {"union": 168}}}
    registry = load(station_entry("s", "department_guided"))
    assert registry.policy("s") == default_policy("department_guided")
    registry = load(
        station_entry("s", "department_guided"),
        policies={"department_guided": {"loads": "operator"}},
    )
    assert registry.policy("s").loads == "operator"
    registry = load(station_entry("s", "department_guided", policy=own))
    assert registry.policy("s").residual.by is ResidualBasis.OPENING_HOURS
    assert registry.party("s", "operator") == "xiaoge"
    assert registry.party("s", "union") == "dachuan-union"


def test_registries_without_parties_still_load() -> None:
    entry = station_entry("s", "industry_managed")
    registry = parse_registry({"version": 1, "stations": {"s": entry | {"operator": "ghost"}}})
    assert registry.parties == {}
