"""An edge agent's config: loaded, and against the registry (station, gateway, devices, timing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from app.checks.plan import Checked, Plan
from edge.config import AgentConfig, read_agent_config
from waystation.configerror import ConfigError, Problem, Severity, Text
from waystation.configfile import Document
from waystation.contract import Kind
from waystation.durations import format_duration
from waystation.registry import Registry, Utility

__all__ = ["AgentCrossCheck", "check_agent"]

_UTILITY_ZH = {Utility.ELECTRICITY: "电", Utility.WATER: "水"}
# Without a rules config, a device is silent after this many reporting intervals.
DEFAULT_SILENT_INTERVALS = 3.0


def check_agent(plan: Plan, out: Checked) -> None:
    assert plan.agent_config is not None  # noqa: S101 - checked by the caller
    try:
        agent, doc = read_agent_config(plan.agent_config)
    except ConfigError as exc:
        out.collect(exc)
        return
    out.agent = agent
    if out.registry is not None:
        silent = out.rules.thresholds.silent_intervals if out.rules else DEFAULT_SILENT_INTERVALS
        out.problems += AgentCrossCheck(agent, doc, out.registry, silent).problems()


@dataclass
class AgentCrossCheck:
    """An agent config against the registry: the same station, devices, kinds and timing."""

    agent: AgentConfig
    doc: Document
    registry: Registry
    silent_intervals: float

    def problems(self) -> list[Problem]:
        station = self.registry.stations.get(self.agent.station)
        if station is None:
            return [
                self.doc.problem(
                    ("station",),
                    Text(
                        f"station {self.agent.station!r} is not in the registry",
                        f"站点 {self.agent.station!r} 不在站点登记文件中",
                    ),
                    Text(
                        "use the station's id from stations.yaml", "请用 stations.yaml 里的站点编号"
                    ),
                    on_key=False,
                    code="unknown_station",
                )
            ]
        out = self._gateway()
        for device_id in self.agent.devices:
            out += self._device(device_id)
        unread = [
            d
            for d, spec in station.devices.items()
            if spec.kind is not Kind.GATEWAY and d not in self.agent.devices
        ]
        if unread:
            out.append(
                self.doc.problem(
                    ("devices",),
                    Text(
                        f"the registry lists device(s) {', '.join(unread)} at this station that "
                        "this agent does not read: they will be alerted as silent unless they "
                        "publish themselves",
                        f"登记文件中本站的设备 {', '.join(unread)} 本代理没有"
                        "读取：除非它们自己上报，否则会被告警为失联",
                    ),
                    Text(
                        "add them here (driver: simulator if there is no hardware yet)",
                        "把它们加到这里（暂无硬件可用 driver: simulator）",
                    ),
                    severity=Severity.WARNING,
                    code="device_not_read",
                )
            )
        zone = station.timezone or self.registry.timezone
        if self.agent.timezone != zone:
            out.append(
                self.doc.problem(
                    ("timezone",),
                    Text(
                        f"the agent's time zone {self.agent.timezone} is not the station's {zone}",
                        f"代理的时区 {self.agent.timezone} 与站点的时区 {zone} 不一致",
                    ),
                    Text(f"write `timezone: {zone}`", f"写 `timezone: {zone}`"),
                    on_key=False,
                    severity=Severity.WARNING,
                    code="timezone_differs",
                )
            )
        return out

    def _gateway(self) -> list[Problem]:
        found = self.registry.device(self.agent.agent_device)
        device = self.agent.agent_device
        if found is None:
            what = Text(
                f"{device!r} is not in the registry: the broker would refuse the agent",
                f"{device!r} 不在登记文件中：MQTT 服务器会拒绝这个代理",
            )
        elif found[0] != self.agent.station:
            what = Text(
                f"{device!r} belongs to station {found[0]!r} in the registry",
                f"{device!r} 在登记文件中属于站点 {found[0]!r}",
            )
        elif found[1].kind is not Kind.GATEWAY:
            what = Text(
                f"{device!r} is a {found[1].kind} in the registry, not the station's "
                "`kind: gateway` device",
                f"{device!r} 在登记文件中是 {found[1].kind}，不是本站的 `kind: gateway` 设备",
            )
        else:
            return []
        gateways = ", ".join(self._gateways()) or "-"
        fix = Text(f"name the station's gateway ({gateways})", f"请写本站的网关设备（{gateways}）")
        return [
            self.doc.problem(("agent_device",), what, fix, on_key=False, code="not_the_gateway")
        ]

    def _gateways(self) -> list[str]:
        station = self.registry.stations[self.agent.station]
        return [d for d, s in station.devices.items() if s.kind is Kind.GATEWAY]

    def _device(self, device_id: str) -> list[Problem]:
        config = self.agent.devices[device_id]
        path = ("devices", device_id)
        found = self.registry.device(device_id)
        if found is None:
            return [
                self.doc.problem(
                    path,
                    Text(
                        f"device {device_id!r} is not in the registry: ingest would dead-letter "
                        "every reading as `unknown_device`",
                        f"设备 {device_id!r} 不在登记文件中："
                        "它的每条读数都会被 ingest 以 `unknown_device` 退回",
                    ),
                    Text(
                        "add it to the station in stations.yaml, or correct the id",
                        "把它加到 stations.yaml 的本站设备中，或改正编号",
                    ),
                    code="unknown_device",
                )
            ]
        station_id, spec = found
        if station_id != self.agent.station:
            return [
                self.doc.problem(
                    path,
                    Text(
                        f"device {device_id!r} belongs to station {station_id!r} in the registry: "
                        "ingest would dead-letter its readings as `wrong_station`",
                        f"设备 {device_id!r} 在登记文件中属于站点 {station_id!r}：它的读数会被以 "
                        "`wrong_station` 退回",
                    ),
                    code="wrong_station",
                )
            ]
        out = []
        measured = config.measured_utility
        if spec.kind is config.kind and measured and spec.utility and measured is not spec.utility:
            out.append(self._reads_another_utility(device_id, measured, spec.utility))
        elif spec.kind is not config.kind:
            registered = f"{spec.kind}" + (f" ({spec.utility})" if spec.utility else "")
            out.append(
                self.doc.problem(
                    (*path, "kind"),
                    Text(
                        f"the registry has {device_id!r} as a {registered}: ingest would "
                        "dead-letter its readings as `kind_mismatch`",
                        f"登记文件中 {device_id!r} 是 "
                        f"{registered}：它的读数会被以 `kind_mismatch` 退回",
                    ),
                    Text(
                        "make the kind (and utility) agree with stations.yaml",
                        "让 kind（和 utility）与 stations.yaml 一致",
                    ),
                    code="kind_mismatch",
                )
            )
        timeout = spec.timeout or spec.interval * self.silent_intervals
        if config.interval > timeout:
            every, after = format_duration(config.interval), format_duration(timeout)
            out.append(
                self.doc.problem(
                    (*path, "interval"),
                    Text(
                        f"the agent reads it every {every}, but the registry calls it "
                        f"silent after {after}: it would be alerted between every two readings",
                        f"代理每 {every} 读取一次，但登记文件认为它超过 {after} "
                        "没有读数即失联：每两次读数之间都会告警",
                    ),
                    Text(
                        "make the registry's `interval` (or `timeout`) match the agent's interval",
                        "让登记文件中的 `interval`（或 `timeout`）与代理的读取间隔一致",
                    ),
                    on_key=False,
                    code="interval_beyond_timeout",
                )
            )
        elif config.interval != spec.interval:
            out.append(self._interval_differs(device_id, config.interval, spec.interval))
        return out

    def _reads_another_utility(
        self, device_id: str, measured: Utility, registered: Utility
    ) -> Problem:
        config = self.agent.devices[device_id]
        said = "`utility`" if config.utility else f"its {config.driver.type} driver"
        said_zh = "`utility`" if config.utility else f"{config.driver.type} 驱动"
        return self.doc.problem(
            ("devices", device_id, "utility" if config.utility else "driver"),
            Text(
                f"the registry has {device_id!r} as a {registered} meter, but {said} reads "
                f"{measured}: its readings would be stored under the wrong register and its "
                f"{registered} billed as silent",
                f"登记文件中 {device_id!r} 是{_UTILITY_ZH[registered]}表，但{said_zh}读的是"
                f"{_UTILITY_ZH[measured]}：读数会记到错误的字段上，"
                f"月度分摊会把它当作无读数",
            ),
            Text(
                "map the register it really has (`water_m3_total` for water, "
                "`energy_kwh_total` for electricity), or correct the device id",
                "映射它真正的寄存器（水表 `water_m3_total`，电表 `energy_kwh_total`），"
                "或改正设备编号",
            ),
            code="utility_mismatch",
        )

    def _interval_differs(self, device_id: str, agent: timedelta, registry: timedelta) -> Problem:
        every, registered = format_duration(agent), format_duration(registry)
        return self.doc.problem(
            ("devices", device_id, "interval"),
            Text(
                f"the agent reads it every {every}, the registry says `interval: {registered}`: "
                "the rules judge silence and the monthly report chooses how to read it (reading "
                "by reading from 5m, else by the hour) by the registry's",
                f"代理每 {every} 读取一次，登记文件却写 `interval: {registered}`："
                "告警规则判断失联、月度分摊决定读取方式（5m 及以上逐条读，否则按小时读）"
                "都以登记文件为准",
            ),
            Text(
                f"write `interval: {every}` for {device_id!r} in stations.yaml",
                f"在 stations.yaml 中给 {device_id!r} 写 `interval: {every}`",
            ),
            on_key=False,
            severity=Severity.WARNING,
            code="interval_differs",
        )
