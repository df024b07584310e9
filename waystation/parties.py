"""Who shares a station's utility bill, and by what rule (SPEC §8), as the registry states it.

A station names its `union` and its `operator` (the enterprise, industry union,
community centre or department that runs it). Policies speak in those two
roles, so one default per operating model fits every station of that model;
a policy may also name a party id directly. Shares are weights: `{union: 1,
operator: 3}` gives the union a quarter. A single name means all of it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from waystation.configerror import Invalid, Text
from waystation.contract import ID_PATTERN

__all__ = [
    "ROLES",
    "PartySpec",
    "PartyType",
    "PolicySpec",
    "ResidualBasis",
    "ResidualSpec",
    "Shares",
    "default_policy",
]

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

# The roles a policy may name instead of a party id; a station binds each to a party.
ROLES = ("union", "operator")


class PartyType(StrEnum):
    UNION = "union"
    ENTERPRISE = "enterprise"
    INDUSTRY_UNION = "industry_union"
    COMMUNITY = "community"
    DEPARTMENT = "department"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartySpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    type: PartyType


PositiveWeight = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]

# `union`, `operator` or a party id (all of it), or weights by role or party id.
Shares = Id | dict[Id, PositiveWeight]


_NO_SHARES = Invalid(
    Text("shares need at least one party", "分摊至少要有一个承担方"),
    Text("name a role (union, operator) or a party, or weights like {union: 1, operator: 3}",
         "写一个角色（union、operator）或承担方，或权重，如 {union: 1, operator: 3}"),
)  # fmt: skip


def _non_empty(value: Shares) -> Shares:
    if isinstance(value, dict) and not value:
        raise _NO_SHARES
    return value


class ResidualBasis(StrEnum):
    """How the residual (main meter minus measured loads) is shared."""

    WEIGHTS = "weights"  # fixed weights
    FLOOR_AREA = "floor_area"  # weights are m² of floor each party uses
    OPENING_HOURS = "opening_hours"  # weights are each party's opening hours a week
    VISITS = "visits"  # each party names its door counter; weights are its visits


class ResidualSpec(_Strict):
    by: ResidualBasis = ResidualBasis.WEIGHTS
    # Weights by role or party; for `visits`, each role or party's door counter.
    shares: Shares | dict[Id, Id]

    @model_validator(mode="after")
    def _shape(self) -> ResidualSpec:
        counted = isinstance(self.shares, dict) and all(
            isinstance(v, str) for v in self.shares.values()
        )
        if isinstance(self.shares, dict) and not self.shares:
            raise _NO_SHARES
        if self.by is ResidualBasis.VISITS and not counted:
            raise Invalid(
                Text("residual by visits maps each party to its door counter",
                     "按客流分摊时，每个承担方要对应它的客流计数器"),
                Text("write shares like {union: c01-door-01, operator: c01-door-02}",
                     "写成 {union: c01-door-01, operator: c01-door-02} 这样"),
            )  # fmt: skip
        if self.by is not ResidualBasis.VISITS and isinstance(self.shares, dict) and counted:
            raise Invalid(
                Text(f"residual by {self.by} needs numeric weights",
                     f"按 {self.by} 分摊需要数字权重"),
                Text("write shares like {union: 40, operator: 160}",
                     "写成 {union: 40, operator: 160} 这样"),
            )  # fmt: skip
        return self

    def weights(self) -> dict[str, Decimal]:
        """Configured weights by role or party (not for `visits`, whose weights are counted)."""
        if isinstance(self.shares, str):
            return {self.shares: Decimal(1)}
        return {k: v for k, v in self.shares.items() if isinstance(v, Decimal)}

    def counters(self) -> dict[str, str]:
        """Role or party → its door counter, for `visits`."""
        if isinstance(self.shares, str):
            return {}
        return {k: v for k, v in self.shares.items() if isinstance(v, str)}


class PolicySpec(_Strict):
    """Who pays the measured sub-loads, and how the residual is shared."""

    loads: Shares = "operator"
    # Exceptions for single sub-loads (a dispenser, a locker, a sub-meter).
    devices: dict[Id, Shares] = Field(default_factory=dict)
    residual: ResidualSpec = ResidualSpec(shares="operator")

    @field_validator("loads")
    @classmethod
    def _loads(cls, value: Shares) -> Shares:
        return _non_empty(value)


def default_policy(model: str) -> PolicySpec:
    """The policy of an operating model when neither station nor registry sets one.

    Read from SPEC §1: an incubated enterprise and an industry union pay the
    station's utilities; a department-guided station's public services
    (dispensers, lockers) are the union's and the rest the enterprise's, until a
    contract says otherwise; a community-integrated station shares premises
    and meters, so the union pays its measured services and half the rest.
    """
    match model:
        case "department_guided":
            return PolicySpec(loads="union", residual=ResidualSpec(shares="operator"))
        case "community_integrated":
            return PolicySpec(
                loads="union",
                residual=ResidualSpec(shares={"union": Decimal(1), "operator": Decimal(1)}),
            )
        case _:  # enterprise_incubated, industry_managed
            return PolicySpec(loads="operator", residual=ResidualSpec(shares="operator"))
