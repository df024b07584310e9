"""Shared by the rules tests: a two-agent station, its agents, the settings file, the notices."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.helpers import MqttSpy, wait_for
from tests.rules_peers import EdgeProcess, Hook, HookServer, SmtpPeer
from waystation.registry import Registry, parse_registry
from waystation.settings import MqttSettings

DINGTALK_SECRET = "SEC-dingtalk-test-secret"
FEISHU_SECRET = "feishu-test-secret"
SMTP_PASSWORD = "smtp-test-password"

# Agent 1 reads the meter and the dispenser, agent 2 the rest.
AGENT1 = {"meter": {"kind": "meter", "utility": "electricity"}, "disp": {"kind": "water_dispenser"}}
AGENT2 = {"locker": {"kind": "charging_locker"}, "door": {"kind": "door_counter"}}


def two_agent_station(station: str) -> Registry:
    return parse_registry(two_agent_station_data(station))


def two_agent_station_data(station: str) -> dict[str, object]:
    """The registry of one station whose devices two agents share, as in stations.yaml."""
    devices: dict[str, object] = {
        f"{station}-{name}": spec | {"interval": "0.5s"} for name, spec in (AGENT1 | AGENT2).items()
    }
    devices[f"{station}-gw1"] = {"kind": "gateway", "interval": "0.5s"}
    devices[f"{station}-gw2"] = {"kind": "gateway", "interval": "0.5s"}
    return {"version": 1, "stations": {
        station: {"name": f"达川·测试驿站 {station}", "model": "industry_managed",
                  "devices": devices},
    }}  # fmt: skip


def rules_file(
    tmp_path: Path, hooks: HookServer, smtp: tuple[SmtpPeer, Path] | None = None
) -> Path:
    """The settings file an operator would write, secrets from the environment."""
    channels: list[dict[str, object]] = [
        {"type": "webhook", "url": hooks.url("/hook")},
        {"type": "wecom", "url": hooks.url("/wecom?key=k")},
        {"type": "dingtalk", "url": hooks.url("/dingtalk?access_token=t"),
         "secret": "${TEST_DINGTALK_SECRET}"},
        {"type": "feishu", "url": hooks.url("/feishu"), "secret": "${TEST_FEISHU_SECRET}"},
        {"type": "webhook", "name": "slow", "url": hooks.url("/slow"), "rate": "3/10s"},
        {"type": "mqtt"},
        {"type": "log"},
    ]  # fmt: skip
    if smtp is not None:
        peer, ca = smtp
        channels.append({
            "type": "email", "host": "127.0.0.1", "port": peer.port, "ca_file": str(ca),
            "sender": "alerts@waystation.test", "to": ["oncall@waystation.test"],
            "username": "alerts", "password": "${TEST_SMTP_PASSWORD}",
        })  # fmt: skip
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({
        "language": "zh",
        # The agents here reconnect within a second or two: a short grace keeps the tests quick.
        "thresholds": {"station_window": "1s", "dispenser_cold_for": "2s",
                       "reconnect_grace": "3s", "monitoring_lost_after": "2s"},
        "timing": {"group_interval": "2s", "scan_every": "0.5s"},
        "channels": channels,
    }), encoding="utf-8")  # fmt: skip
    return path


def firing(hooks: HookServer, rule: str) -> list[Hook]:
    return [h for h in hooks.on("/hook") for n in h.body["notices"]
            for a in n["firing"] if a["rule"] == rule]  # fmt: skip


def repeats(hooks: HookServer, rule: str) -> list[Hook]:
    """Notices that list `rule` firing again with nothing new beside it: a repeat.

    A group's notice lists every alert still firing, so an update that brings a
    new alert (the agent's devices falling silent on a slow machine) lists the
    old ones again; that is not a repeat.
    """
    seen: set[tuple[str, str]] = set()
    out = []
    for hook in hooks.on("/hook"):
        for notice in hook.body["notices"]:
            now = {(a["rule"], a.get("device") or "") for a in notice["firing"]}
            if any(r == rule for r, _ in now) and seen and now <= seen:
                out.append(hook)
            seen |= now
    return out


def resolved(hooks: HookServer, rule: str) -> list[Hook]:
    return [h for h in hooks.on("/hook") for n in h.body["notices"]
            for a in n["resolved"] if a["rule"] == rule]  # fmt: skip


def agents(tmp_path: Path, broker: str, station: str) -> tuple[EdgeProcess, EdgeProcess]:
    def devices(names: dict[str, dict[str, str]]) -> dict[str, dict[str, object]]:
        return {f"{station}-{n}": dict(spec) for n, spec in names.items()}

    return (
        EdgeProcess(tmp_path / "a1", broker, station, f"{station}-gw1", devices(AGENT1)),
        EdgeProcess(tmp_path / "a2", broker, station, f"{station}-gw2", devices(AGENT2)),
    )


def will_only_stations(stations: list[str], name: str = "驿站") -> Registry:
    """Stations of an agent and a door counter that report hourly: only statuses move them."""
    return parse_registry({"version": 1, "stations": {s: {
        "name": f"{name} {s}", "model": "industry_managed",
        "devices": {f"{s}-gw": {"kind": "gateway", "interval": "1h"},
                    f"{s}-door": {"kind": "door_counter", "interval": "1h"}},
    } for s in stations}})  # fmt: skip


def reporting(settings: MqttSettings, station: str, uid: str) -> None:
    """Wait until every device of the station has published (the agents are slow to start on a
    loaded machine: a service started before them would rightly see the station down)."""
    with MqttSpy(settings, f"watch-{uid}", [f"stations/{station}/+/telemetry"]) as spy:
        wait_for(lambda: len({m.topic for m in spy.messages}) == 6, "all six devices reporting", 20)


def district_registry_file(tmp_path: Path, stations: list[str]) -> Path:
    """stations.yaml with a two-agent station per id."""
    data: dict[str, object] = {"version": 1, "stations": {}}
    for station in stations:
        data["stations"] |= two_agent_station_data(station)["stations"]  # type: ignore[operator]
    path = tmp_path / "stations.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@contextmanager
def running_district(
    tmp_path: Path, broker: str, stations: list[str]
) -> Iterator[list[EdgeProcess]]:
    """Two agents per station reporting to `broker`, killed at the end."""
    procs = [p for s in stations for p in agents(tmp_path / s, broker, s)]
    for p in procs:
        p.start()
    try:
        yield procs
    finally:
        for p in procs:
            p.kill9()
