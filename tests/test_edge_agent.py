"""The edge agent on real Mosquitto, with real protocol peers as station hardware.

The oracle is the outbox itself: each device's seq counts up by one per
reading, so "nothing lost" means the seqs that reached the broker are exactly
first..last, and "in order" means they arrived increasing (repeats after a
reconnect or a crash are allowed; ingest absorbs them).
"""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from app.localservers import MosquittoServer
from edge.agent import EdgeAgent
from edge.config import AgentConfig, DeviceConfig, OutboxConfig
from edge.drivers import DriverError
from edge.drivers.dlt645.config import DI_FORWARD_ACTIVE_RATES, DI_FORWARD_ACTIVE_TOTAL
from edge.outbox import Outbox
from edge.pollers import Pollers
from edge.stats import AgentStats
from tests.helpers import MqttSpy, readings_by_device, station_registry, wait_for
from tests.peers import Dlt645Peer, ModbusPeer, registers
from waystation.contract import Kind, StatusState
from waystation.mqttsession import SessionOptions, open_session
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration


def seqs_in_order(readings: list[dict[str, object]]) -> list[int]:
    """Seqs in arrival order, repeats of an earlier one removed."""
    seen: set[int] = set()
    out = []
    for r in readings:
        seq = int(r["seq"])  # type: ignore[call-overload]
        if seq not in seen:
            seen.add(seq)
            out.append(seq)
    return out


def test_broker_down_then_back_every_reading_arrives_in_order(
    own_mosquitto: MosquittoServer, tmp_path: Path, uid: str
) -> None:
    station = f"bd-{uid}"
    registry = station_registry(station)
    config = AgentConfig.from_registry(
        registry, station, outbox=tmp_path / "outbox.db", interval=timedelta(seconds=0.05)
    )
    settings = MqttSettings.from_url(own_mosquitto.url)
    # One reading per device before the agent starts fixes where each seq begins.
    with Outbox(config.outbox.path, max_readings=10**6, max_age=timedelta(days=1)) as ob:
        first = {
            d: ob.put(d, str(s.kind), 1_761_955_200_000, {}) for d, s in config.devices.items()
        }
    with MqttSpy(
        settings, f"spy-{uid}", [f"stations/{station}/+/telemetry"], persistent=True
    ) as spy:
        agent = EdgeAgent(config, settings)
        agent.start()
        assert agent.wait_connected()
        wait_for(lambda: agent.stats.readings_acked >= 60, "readings flowing")
        own_mosquitto.stop()
        during = agent.stats.readings
        wait_for(lambda: agent.stats.readings >= during + 300, "readings while the broker is down")
        assert agent.outbox.depth >= 250, "readings were not held in the outbox"
        own_mosquitto.start()
        wait_for(lambda: agent.wait_connected(0.1) and agent.outbox.depth < 30, "the replay", 60)
        agent.stop()
        last = dict(sqlite3.connect(config.outbox.path).execute("SELECT device, seq FROM seqs"))
        wait_for(
            lambda: all(
                last[d] in {int(r["seq"]) for r in readings_by_device(spy.messages).get(d, [])}  # type: ignore[call-overload]
                for d in config.devices
            ),
            "the last reading of every device at the spy",
        )
    got = readings_by_device(spy.messages)
    for device in config.devices:
        seqs = seqs_in_order(got[device])
        assert seqs == list(range(first[device], last[device] + 1)), f"{device}: lost or reordered"


def _agent_yaml(path: Path, station: str, outbox: Path, devices: dict[str, str]) -> Path:
    config = {
        "version": 1,
        "station": station,
        "agent_device": f"{station}-gw",
        "outbox": {"path": str(outbox), "max_readings": 10**6},
        "devices": {d: {"kind": k, "interval": "1h", "driver": {"type": "simulator"}}
                    for d, k in devices.items()},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def _depth(outbox: Path) -> int:
    with sqlite3.connect(outbox) as db:
        return int(db.execute("SELECT COUNT(*) FROM readings").fetchone()[0])


def test_kill9_in_the_middle_of_a_replay_loses_nothing(
    mosquitto: MosquittoServer, tmp_path: Path, uid: str
) -> None:
    station = f"kr-{uid}"
    door = f"{station}-door"
    outbox = tmp_path / "outbox.db"
    config = _agent_yaml(tmp_path / "agent.yaml", station, outbox, {door: "door_counter"})
    backlog = 60_000
    with Outbox(outbox, max_readings=10**6, max_age=timedelta(days=1)) as ob:
        seqs = ob.put_many(
            [(door, "door_counter", 1_761_955_200_000 + i, {"in_total": i, "out_total": i})
             for i in range(backlog)]
        )  # fmt: skip
    cmd = [sys.executable, "-m", "app.cli", "edge", "--agent-config", str(config),
           "--mqtt", mosquitto.url, "--log-level", "WARNING"]  # fmt: skip
    settings = MqttSettings.from_url(mosquitto.url)
    with MqttSpy(settings, f"spy-{uid}", [f"stations/{station}/+/telemetry"]) as spy:

        def received() -> set[int]:
            return set(seqs_in_order(readings_by_device(spy.messages).get(door, [])))

        first_run = subprocess.Popen(cmd)
        wait_for(lambda: len(received()) >= backlog // 10, "the replay under way", 60)
        first_run.send_signal(signal.SIGKILL)
        first_run.wait()
        assert len(received()) < backlog, "the replay finished before the kill: nothing was tested"
        assert _depth(outbox) > 0

        second_run = subprocess.Popen(cmd)
        try:
            wait_for(lambda: received() >= set(seqs), "every backlog reading at the broker", 120)
        finally:
            second_run.send_signal(signal.SIGTERM)
            assert second_run.wait(30) == 0
    got = readings_by_device(spy.messages)[door]
    assert seqs_in_order(got)[:backlog] == seqs  # in order, complete
    extra = len(got) - len(set(seqs_in_order(got)))
    assert extra <= 20 * 100, f"{extra} repeats: more than the in-flight window after a crash"


def test_full_outbox_drops_oldest_and_reports_the_count(tmp_path: Path, uid: str) -> None:
    broker = MosquittoServer(tmp_path / "mosquitto")  # not started yet: the broker is down
    station = f"of-{uid}"
    config = AgentConfig(
        station=station,
        agent_device=f"{station}-gw",
        gateway_interval=timedelta(seconds=0.2),
        outbox=OutboxConfig(path=tmp_path / "outbox.db", max_readings=40),
        devices={
            f"{station}-door": DeviceConfig(
                kind=Kind.DOOR_COUNTER, interval=timedelta(seconds=0.02)
            )
        },
    )
    settings = MqttSettings.from_url(broker.url)
    agent = EdgeAgent(config, settings)
    agent.start()
    try:
        wait_for(lambda: agent.outbox.dropped_total >= 50, "the outbox to overflow")
        broker.start()
        with MqttSpy(settings, f"spy-{uid}", [f"stations/{station}/+/telemetry"]) as spy:
            wait_for(
                lambda: any(
                    int(r["data"]["outbox_dropped_total"]) >= 50  # type: ignore[index]
                    for r in readings_by_device(spy.messages).get(f"{station}-gw", [])
                ),
                "a gateway reading that reports the drops",
                30,
            )
            door = seqs_in_order(readings_by_device(spy.messages).get(f"{station}-door", []))
    finally:
        agent.stop()
        broker.stop()
    # What reached the broker after the outage started with the newest readings kept,
    # not with the first ones taken while the broker was down.
    assert door
    assert door[0] > agent.outbox.last_seq(f"{station}-door") - 200  # type: ignore[operator]


def test_unsynchronised_clock_holds_readings(tmp_path: Path, uid: str) -> None:
    # A box without RTC before NTP: its clock runs, but from 1970-01-02.
    offset = [86_400.0 - time.time()]
    station = f"ck-{uid}"
    config = AgentConfig(
        station=station,
        agent_device=f"{station}-gw",
        outbox=OutboxConfig(path=tmp_path / "outbox.db"),
        devices={
            f"{station}-door": DeviceConfig(
                kind=Kind.DOOR_COUNTER, interval=timedelta(seconds=0.02)
            )
        },
    )
    broker = MosquittoServer(tmp_path / "mosquitto")  # never started
    agent = EdgeAgent(
        config, MqttSettings.from_url(broker.url), clock=lambda: time.time() + offset[0]
    )
    agent.start()
    try:
        wait_for(lambda: agent.stats.held_for_clock >= 5, "readings held")
        assert agent.outbox.depth == 0
        offset[0] = 0.0  # NTP answered
        wait_for(lambda: agent.outbox.depth > 0, "readings stamped once the clock is right")
        rows = agent.outbox.after(0, 100)
        assert all(json.loads(r.payload)["ts"] >= 1_761_955_200_000 for r in rows)  # no 1970
    finally:
        agent.stop(drain_s=0)


def test_modbus_dlt645_and_pulse_devices_end_to_end(
    mosquitto: MosquittoServer, tmp_path: Path, uid: str
) -> None:
    station = f"hw-{uid}"
    disp, meter, door = f"{station}-disp", f"{station}-meter", f"{station}-door"
    modbus = ModbusPeer()
    modbus.set(0, registers(1532.25, "float32"))
    modbus.set(2, registers(21140, "uint32"))  # 211.40 kWh at scale 0.01
    modbus.set(4, registers(925, "int16"))  # 92.5 °C at scale 0.1
    modbus.set(5, [1])
    modbus.start()
    dlt = Dlt645Peer()
    dlt.set_kwh(DI_FORWARD_ACTIVE_TOTAL, 4021.57)
    for di, kwh in zip(DI_FORWARD_ACTIVE_RATES, (100.5, 1500.25, 1700.12, 720.7), strict=True):
        dlt.set_kwh(di, kwh)
    dlt.start()
    counters = {"in_total": tmp_path / "in", "out_total": tmp_path / "out"}
    counters["in_total"].write_text("120\n")
    counters["out_total"].write_text("118\n")
    config = AgentConfig.model_validate({
        "station": station,
        "agent_device": f"{station}-gw",
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "devices": {
            disp: {"kind": "water_dispenser", "interval": "0.2s", "driver": {
                "type": "modbus", "host": "127.0.0.1", "port": modbus.port, "timeout": "0.5s",
                "registers": {
                    "water_l_total": {"address": 0, "type": "float32"},
                    "energy_kwh_total": {"address": 2, "type": "uint32", "scale": 0.01},
                    "temp_c": {"address": 4, "type": "int16", "scale": 0.1},
                    "heating": {"address": 5, "type": "bool"}}}},
            meter: {"kind": "meter", "interval": "0.5s", "driver": {
                "type": "dlt645", "host": "127.0.0.1", "port": dlt.port, "timeout": "1s"}},
            door: {"kind": "door_counter", "interval": "0.2s", "driver": {
                "type": "pulse", "counters": {k: str(v) for k, v in counters.items()}}},
        },
    })  # fmt: skip
    settings = MqttSettings.from_url(mosquitto.url)
    try:
        with (
            MqttSpy(settings, f"spy-{uid}", [f"stations/{station}/#"]) as spy,
            EdgeAgent(config, settings) as agent,
        ):

            def latest(device: str) -> dict[str, object]:
                got = readings_by_device(spy.messages).get(device)
                return got[-1]["data"] if got else {}  # type: ignore[return-value]

            wait_for(lambda: bool(latest(disp) and latest(meter) and latest(door)), "all three")
            assert latest(disp) == {"water_l_total": 1532.25, "energy_kwh_total": 211.4,
                                    "temp_c": 92.5, "heating": True}  # fmt: skip
            assert latest(meter) == {
                "energy_kwh_total": 4021.57, "energy_kwh_sharp_total": 100.5,
                "energy_kwh_peak_total": 1500.25, "energy_kwh_flat_total": 1700.12,
                "energy_kwh_valley_total": 720.7,
            }  # fmt: skip
            assert latest(door) == {"in_total": 120, "out_total": 118}

            # The dispenser's controller stops answering: reported, the others go on.
            modbus.stop()
            wait_for(lambda: agent.device_state(disp) is StatusState.OFFLINE, "unreachable")
            wait_for(lambda: any(json.loads(m.payload)["type"] == "unreachable"
                                 for m in spy.on(f"{disp}/event")), "the unreachable event")  # fmt: skip
            status = json.loads(spy.on(f"{disp}/status")[-1].payload)
            assert status["state"] == "offline"
            counters["in_total"].write_text("125\n")
            wait_for(lambda: latest(door) == {"in_total": 125, "out_total": 118}, "door goes on")

            # Back, with a new temperature.
            modbus.set(4, registers(-31, "int16"))  # held while it was down: -3.1 °C
            modbus.start()
            wait_for(lambda: latest(disp).get("temp_c") == -3.1, "the dispenser back", 20)
            assert agent.device_state(disp) is StatusState.ONLINE
            assert json.loads(spy.on(f"{disp}/status")[-1].payload)["state"] == "online"
            assert any(
                json.loads(m.payload)["type"] == "reachable" for m in spy.on(f"{disp}/event")
            )
    finally:
        modbus.stop()
        dlt.stop()


class _ComesAndGoes:
    """A device that answers every other read (a loose cable)."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, _now: object) -> dict[str, object]:
        self.reads += 1
        if self.reads % 2:
            raise DriverError("no answer (timed out)")
        return {"in_total": self.reads, "out_total": 0}

    def close(self) -> None:
        pass


def test_a_device_that_comes_and_goes_is_said_once_not_every_time(
    tmp_path: Path, mosquitto: MosquittoServer, uid: str, caplog: pytest.LogCaptureFixture
) -> None:
    station = f"st{uid}"
    config = AgentConfig.from_registry(
        station_registry(station), station, outbox=tmp_path / "o.db",
        interval=timedelta(seconds=1),
    )  # fmt: skip
    door = f"{station}-door"
    session = open_session(MqttSettings.from_url(mosquitto.url),
                           SessionOptions(client_id=f"gw-{uid}", label="agent"))  # fmt: skip
    session.start()
    try:
        assert session.wait_connected(10)
        with Outbox(config.outbox.path, max_readings=1000, max_age=timedelta(days=1)) as ob:
            pollers = Pollers(config, {door: _ComesAndGoes()}, ob, session, AgentStats(),
                              clock=time.time, on_reading=lambda: None)  # fmt: skip
            with caplog.at_level(logging.WARNING, logger="edge.agent"):
                for _ in range(40):  # twenty times gone, twenty times back
                    pollers.read_device(door, time.time())
            lines = [r.getMessage() for r in caplog.records if door in r.getMessage()]
            assert lines == [f"device {door} unreachable: no answer (timed out)",
                             f"device {door} is back"]  # fmt: skip
            assert ob.depth == 20, "every good reading kept"
    finally:
        session.stop()
