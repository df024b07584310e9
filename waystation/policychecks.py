"""A station's allocation policy against the registry: every party, role and device it names.

Run by the registry's own validation (`Registry`), once its parties are configured.
"""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import TYPE_CHECKING

from waystation.configerror import Invalid, Text
from waystation.contract import Kind
from waystation.parties import ROLES, Shares, default_policy

if TYPE_CHECKING:
    from waystation.registry import Registry, StationSpec

__all__ = ["Located", "station_problems"]

Located = tuple[tuple[str | int, ...], Invalid]


def _party_problems(registry: Registry, station: StationSpec) -> list[Located]:
    out: list[Located] = []
    parties = ", ".join(registry.parties)
    for role, party in (("union", station.union), ("operator", station.operator)):
        if party is not None and party not in registry.parties:
            out.append(
                (
                    (role,),
                    Invalid(
                        Text(
                            f"{role} {party!r} is not among the registry's parties",
                            f"{role} {party!r} 不在登记文件的 parties 中",
                        ),
                        _suggest_party(party, registry)
                        or Text(f"name one of: {parties}", f"请写其中之一：{parties}"),
                        code="unknown_party",
                    ),
                )
            )
    if station.union is None and registry._only_union() is None:  # noqa: SLF001
        out.append(
            (
                (),
                Invalid(
                    Text(
                        "the registry has not exactly one union party, so this station "
                        "must name its `union`",
                        "登记文件里的工会不止一个（或没有），这个站点必须写明 `union`",
                    ),
                    Text("add `union: <party id>`", "加上 `union: <承担方编号>`"),
                    code="missing",
                ),
            )
        )
    return out


def _suggest_party(name: str, registry: Registry) -> Text | None:
    close = difflib.get_close_matches(name, [*ROLES, *registry.parties], n=1, cutoff=0.6)
    return Text(f"did you mean {close[0]!r}?", f"是不是 {close[0]!r}？") if close else None


def station_problems(registry: Registry, station: StationSpec) -> list[Located]:
    """Every party, role and device a station's allocation policy names, checked."""
    out = _party_problems(registry, station)
    own = station.policy is not None
    policy = station.policy or registry.policies.get(station.model) or default_policy(station.model)
    base: tuple[str | int, ...] = ("policy",) if own else ()

    def check_names(shares: Shares, where: tuple[str | int, ...]) -> None:
        for name in [shares] if isinstance(shares, str) else shares:
            if name == "operator" and station.operator is None:
                out.append(
                    (
                        (*base, *where),
                        Invalid(
                            Text(
                                "the policy names `operator`, but the station has none",
                                "分摊规则用到了 `operator`，但这个站点没有写 `operator`",
                            ),
                            Text(
                                "add `operator: <party id>` to the station",
                                "给站点加上 `operator: <承担方编号>`",
                            ),
                            code="missing",
                        ),
                    )
                )
            elif name not in ROLES and name not in registry.parties:
                out.append(
                    (
                        (*base, *where),
                        Invalid(
                            Text(
                                f"{name!r} is neither a role (union, operator) nor a party",
                                f"{name!r} 既不是角色（union、operator），也不是承担方",
                            ),
                            _suggest_party(name, registry),
                            code="unknown_party",
                        ),
                    )
                )

    check_names(policy.loads, ("loads",))
    for device_id, shares in policy.devices.items():
        spec = station.devices.get(device_id)
        if spec is None or spec.kind in (Kind.DOOR_COUNTER, Kind.GATEWAY):
            out.append(
                (
                    (*base, "devices", device_id),
                    Invalid(
                        Text(
                            f"{device_id!r} is not a measured load of this station (a dispenser, "
                            "locker or meter)",
                            f"{device_id!r} 不是本站的计量负载（饮水机、充电柜或电表）",
                        ),
                        code="not_a_load",
                    ),
                )
            )
        else:
            check_names(shares, ("devices", device_id))
    counters = policy.residual.counters()
    for counter in counters.values():
        spec = station.devices.get(counter)
        if spec is None or spec.kind is not Kind.DOOR_COUNTER:
            out.append(
                (
                    (*base, "residual", "shares"),
                    Invalid(
                        Text(
                            f"{counter!r} is not a door counter of this station",
                            f"{counter!r} 不是本站的客流计数器",
                        ),
                        code="not_a_counter",
                    ),
                )
            )
    weights = dict.fromkeys(counters, Decimal(1)) or policy.residual.weights()
    check_names(weights, ("residual", "shares"))
    return out
