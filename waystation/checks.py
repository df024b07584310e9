"""Everything a service will use, checked together: `check-config`, and every service at start-up.

Each file is validated on its own by its loader; this module adds what only
shows across files: an agent's devices against the registry, the tariffs a
registry names, a station's gateway, the URLs each service calls, prices
that are only examples. Every problem is collected (errors stop a service,
warnings do not), so one run lists all of them.

Only the registry and settings are imported at module level: the agent,
rules and tariff models are imported when a plan asks for them, so the check
runs on an edge box that has none of the server's packages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from waystation.configerror import ConfigError, Problem, Severity, Text
from waystation.configfile import Document
from waystation.contract import Kind
from waystation.registry import Registry, Role, Utility, format_duration, read_registry
from waystation.settings import MqttSettings, check_influx_url

if TYPE_CHECKING:
    from edge.config import AgentConfig
    from rules.allocation.tariff import Tariff
    from rules.outage.config import RulesConfig

__all__ = ["Checked", "Plan", "check"]

WARNING = Severity.WARNING
# Without a rules config, a device is silent after this many reporting intervals.
DEFAULT_SILENT_INTERVALS = 3.0


@dataclass
class Plan:
    """What a command will use, so what to load and check."""

    registry: Path | None = None
    registry_required: bool = True  # else: cross-check against it only if it is there
    agent_config: Path | None = None
    station: str | None = None  # `edge --station`: a registry station the agent simulates
    rules_config: Path | None = None
    rules: bool = False  # the rules service: its config (or the defaults) is used
    tariffs: list[Path] | None = None  # given with --tariffs; else the shipped ones
    allocation: bool = False  # the allocation will run: load the tariffs the registry names
    scheduled_billing: bool = False  # a monthly job will bill: example prices are refused
    mqtt: str | None = None
    mqtt_ca: str | None = None
    influx: str | None = None


@dataclass
class Checked:
    """What was loaded (None where it could not be) and every problem found."""

    registry: Registry | None = None
    agent: AgentConfig | None = None
    rules: RulesConfig | None = None
    tariffs: dict[str, Tariff] | None = None
    problems: list[Problem] = field(default_factory=list)
    registry_document: Document | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is WARNING]


def check(plan: Plan) -> Checked:
    out = Checked()
    _settings(plan, out)
    _registry(plan, out)
    if plan.rules or plan.rules_config is not None:
        _rules(plan, out)
    if plan.agent_config is not None:
        _agent(plan, out)
    if plan.station is not None and out.registry is not None:
        _station(plan.station, out)
    if out.registry is not None:
        _gateways_and_meters(out.registry, out)
        if plan.tariffs is not None or (plan.allocation and out.registry.parties):
            _tariffs(plan, out)
    return out


def _collect(out: Checked, exc: ConfigError) -> None:
    out.problems += exc.problems


# --- settings ------------------------------------------------------------------------------------


def _settings(plan: Plan, out: Checked) -> None:
    if plan.mqtt is not None:
        try:
            settings = MqttSettings.from_url(plan.mqtt, plan.mqtt_ca)
        except ConfigError as exc:
            _collect(out, exc)
        else:
            if settings.ca_file is not None and not settings.ca_file.is_file():
                out.problems.append(
                    Problem(
                        Text(
                            f"CA certificate {settings.ca_file} does not exist",
                            f"CA 证书 {settings.ca_file} 不存在",
                        ),
                        Text(
                            "give the broker's CA file with --mqtt-ca / WAYSTATION_MQTT_CA",
                            "用 --mqtt-ca / WAYSTATION_MQTT_CA 指定 MQTT 服务器的 CA 证书",
                        ),
                        where="--mqtt-ca / WAYSTATION_MQTT_CA",
                        code="no_file",
                    )
                )
    if plan.influx is not None:
        try:
            check_influx_url(plan.influx)
        except ConfigError as exc:
            _collect(out, exc)


# --- registry ------------------------------------------------------------------------------------


def _registry(plan: Plan, out: Checked) -> None:
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
                severity=WARNING,
                code="no_registry",
            )
        )
        return
    try:
        out.registry, out.registry_document = read_registry(plan.registry)
    except ConfigError as exc:
        _collect(out, exc)


def _at(
    out: Checked, path: tuple[str | int, ...], what: Text, fix: Text | None = None, **kwargs: Any
) -> Problem:
    """A problem located in the registry."""
    assert out.registry_document is not None  # noqa: S101 - only called once it loaded
    return out.registry_document.problem(path, what, fix, **kwargs)


def _gateways_and_meters(registry: Registry, out: Checked) -> None:
    for station_id, station in registry.stations.items():
        kinds = [spec.kind for spec in station.devices.values()]
        if Kind.GATEWAY not in kinds:
            out.problems.append(
                _at(
                    out,
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
                    severity=WARNING,
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
                    _at(
                        out,
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
                        severity=WARNING,
                        code="no_main_meter",
                    )
                )


_ZH = {Utility.ELECTRICITY: "电", Utility.WATER: "水"}


def _station(station_id: str, out: Checked) -> None:
    """`edge --station`: the station must exist and have exactly one gateway for the agent."""
    from edge.config import AgentConfig, AgentConfigError  # noqa: PLC0415 - edge only

    assert out.registry is not None  # noqa: S101 - checked by the caller
    assert out.registry_document is not None  # noqa: S101 - loaded with it
    try:
        AgentConfig.from_registry(out.registry, station_id, outbox=Path("unused.db"))
    except AgentConfigError as exc:
        _collect(out, exc.with_file(out.registry_document.file))


# --- rules config --------------------------------------------------------------------------------


def _rules(plan: Plan, out: Checked) -> None:
    from rules.outage.config import RulesConfig, read_rules_config  # noqa: PLC0415 - server

    if plan.rules_config is None:
        out.rules = RulesConfig()
        return
    try:
        out.rules = read_rules_config(plan.rules_config).config
    except ConfigError as exc:
        _collect(out, exc)


# --- agent config --------------------------------------------------------------------------------


def _agent(plan: Plan, out: Checked) -> None:
    from edge.config import read_agent_config  # noqa: PLC0415 - edge only

    assert plan.agent_config is not None  # noqa: S101 - checked by the caller
    try:
        agent, doc = read_agent_config(plan.agent_config)
    except ConfigError as exc:
        _collect(out, exc)
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
                    severity=WARNING,
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
                    severity=WARNING,
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
        if spec.kind is not config.kind or (config.utility and config.utility is not spec.utility):
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
        return out


# --- tariffs -------------------------------------------------------------------------------------


def _tariffs(plan: Plan, out: Checked) -> None:
    from rules.allocation.tariff import load_tariffs, shipped_tariffs  # noqa: PLC0415 - server

    try:
        out.tariffs = load_tariffs(plan.tariffs) if plan.tariffs else shipped_tariffs()
    except ConfigError as exc:
        _collect(out, exc)
        return
    registry = out.registry
    assert registry is not None  # noqa: S101 - checked by the caller
    if not registry.parties:
        return
    used: dict[str, list[str]] = {}
    for station_id, station in registry.stations.items():
        wanted = station.tariff or registry.tariff
        path: tuple[str, ...] = (
            ("stations", station_id, "tariff") if station.tariff else ("tariff",)
        )
        if wanted is None and len(out.tariffs) != 1:
            out.problems.append(
                _at(
                    out,
                    ("stations", station_id),
                    Text(
                        "the station names no tariff, and more than one is loaded",
                        "站点没有指定电价，而已加载的电价不止一个",
                    ),
                    Text(
                        f"add `tariff:` to the registry or the station (loaded: "
                        f"{', '.join(out.tariffs)})",
                        f"在登记文件或站点中加上 `tariff:`（已加载：{', '.join(out.tariffs)}）",
                    ),
                    code="no_tariff",
                )
            )
            continue
        chosen = wanted or next(iter(out.tariffs))
        if chosen not in out.tariffs:
            problem = _unknown_tariff(out, path, chosen, plan)
            if problem not in out.problems:
                out.problems.append(problem)
            continue
        used.setdefault(chosen, []).append(station_id)
    for tariff_id in used:
        if out.tariffs[tariff_id].example:
            out.problems.append(_example(tariff_id, plan))


def _unknown_tariff(out: Checked, path: tuple[str, ...], wanted: str, plan: Plan) -> Problem:
    assert out.tariffs is not None  # noqa: S101 - loaded by the caller
    loaded = ", ".join(out.tariffs)
    source = "--tariffs" if plan.tariffs else "the shipped example tariffs (no --tariffs given)"
    source_zh = "--tariffs" if plan.tariffs else "随软件附带的示例电价（未给 --tariffs）"
    return _at(
        out,
        path,
        Text(
            f"tariff {wanted!r} is not loaded: {source} hold(s) {loaded}",
            f"电价 {wanted!r} 没有加载：{source_zh} 中只有 {loaded}",
        ),
        Text(
            "give its file with --tariffs FILE|DIR (or WAYSTATION_TARIFFS)",
            "用 --tariffs 文件或目录（或 WAYSTATION_TARIFFS）给出它的电价文件",
        ),
        on_key=False,
        code="unknown_tariff",
    )


def _example(tariff_id: str, plan: Plan) -> Problem:
    if plan.scheduled_billing:
        return Problem(
            Text(
                f"tariff {tariff_id!r} holds EXAMPLE prices: the monthly allocation job "
                "refuses to bill with them",
                f"电价 {tariff_id!r} 是示例价格：每月自动分摊不能按示例价格出账",
            ),
            Text(
                "copy the tariff file, put in the prices on your utility bills, remove "
                "`example: true`, and give it with --tariffs (rules also runs without "
                "the monthly job with --no-allocation)",
                "复制电价文件，填入电费单上的实际价格，"
                "删掉 `example: true`，再用 --tariffs 指定（rules 也可加 --no-allocation "
                "不跑每月分摊）",
            ),
            where="--tariffs",
            code="example_prices",
        )
    return Problem(
        Text(
            f"tariff {tariff_id!r} holds EXAMPLE prices: `rules` and `report --schedule` "
            "refuse to bill with them, and `report` marks its exports as example prices",
            f"电价 {tariff_id!r} 是示例价格：`rules` 和 `report --schedule` 不会按它出账，"
            "`report` 导出的文件会标注“示例价格”",
        ),
        Text(
            "copy the tariff file, put in the prices on your utility bills, remove "
            "`example: true`, and give it with --tariffs",
            "复制电价文件，填入电费单上的实际价格，删掉 `example: true`，再用 --tariffs 指定",
        ),
        where="--tariffs",
        severity=WARNING,
        code="example_prices",
    )
