"""The registry: loaded, each station served by a gateway, sub-meters with their main meter.

And for `edge --station`: the station exists and has the one gateway an agent needs.
"""

from __future__ import annotations

from pathlib import Path

from app.checks.plan import Checked, Plan
from edge.config import AgentConfig, AgentConfigError
from waystation.configerror import ConfigError, Problem, Severity, Text
from waystation.contract import Kind
from waystation.registry import Registry, Role, Utility, read_registry

__all__ = ["check_gateways_and_meters", "check_registry", "check_station"]


def check_registry(plan: Plan, out: Checked) -> None:
    if plan.registry is None:
        return
    if not plan.registry_required and not plan.registry.exists():
        out.problems.append(
            Problem(
                Text(
                    f"no registry at {plan.registry}: the agent's devices are not checked "
                    "against it",
                    f"没有站点登记文件 {plan.registry}：代理的设备未与之核对",
                ),
                Text(
                    "copy stations.yaml here, or name it with --registry, to check them too",
                    "把 stations.yaml 复制过来，或用 --registry 指定，即可一并核对",
                ),
                severity=Severity.WARNING,
                code="no_registry",
            )
        )
        return
    try:
        out.registry, out.registry_document = read_registry(plan.registry)
    except ConfigError as exc:
        out.collect(exc)


def check_gateways_and_meters(registry: Registry, out: Checked) -> None:
    for station_id, station in registry.stations.items():
        kinds = [spec.kind for spec in station.devices.values()]
        if Kind.GATEWAY not in kinds:
            out.problems.append(
                out.at_registry(
                    ("stations", station_id),
                    Text(
                        "the station has no `kind: gateway` device: no edge agent can serve it, "
                        "so only devices that speak MQTT themselves can report",
                        "站点没有 `kind: gateway` 设备：边缘代理无法为它服务，"
                        "只有自带 MQTT 的设备能上报",
                    ),
                    Text(
                        "add the station box as a device, e.g. `gw-01: {kind: gateway}`",
                        "把站点的网关盒子加为设备，如 `gw-01: {kind: gateway}`",
                    ),
                    severity=Severity.WARNING,
                    code="no_gateway",
                )
            )
        for utility in Utility:
            meters = [
                s.role
                for s in station.devices.values()
                if s.kind is Kind.METER and s.utility is utility
            ]
            if Role.SUB in meters and Role.MAIN not in meters:
                out.problems.append(
                    out.at_registry(
                        ("stations", station_id),
                        Text(
                            f"the station has {utility} sub-meters but no main {utility} meter: "
                            "its allocation bills only what the sub-meters measured",
                            f"站点有{_ZH[utility]}分表但没有{_ZH[utility]}总表：分摊只计分表测得的用量",
                        ),
                        Text(
                            "add the main meter (role: main), or ignore this if there is none",
                            "加上总表（role: main）；确实没有总表可忽略此提示",
                        ),
                        severity=Severity.WARNING,
                        code="no_main_meter",
                    )
                )


_ZH = {Utility.ELECTRICITY: "电", Utility.WATER: "水"}


def check_station(station_id: str, out: Checked) -> None:
    """`edge --station`: the station must exist and have exactly one gateway for the agent."""
    assert out.registry is not None  # noqa: S101 - checked by the caller
    assert out.registry_document is not None  # noqa: S101 - loaded with it
    try:
        AgentConfig.from_registry(out.registry, station_id, outbox=Path("unused.db"))
    except AgentConfigError as exc:
        out.collect(exc.with_file(out.registry_document.file))
