"""The faults the demo injects into its simulated stations, through the real agents.

A power cut at a station's router is the agent's connection dying without a
goodbye: the broker publishes the agent's will, exactly as after a real cut.
The box keeps reading into its outbox (it is on a battery), and when power
returns it reconnects and replays. A cold dispenser is its heater failing in
the simulation; a meter reset is scheduled in the simulated history.
"""

from __future__ import annotations

from datetime import datetime

import paho.mqtt.client as mqtt

from edge.agent import EdgeAgent

__all__ = ["chill_dispenser", "cut_power", "restore_power", "schedule_meter_reset"]


def _paho(agent: EdgeAgent) -> mqtt.Client:
    """The agent's paho client under its session: the demo plays the power cut on it."""
    client: mqtt.Client = agent._session._client  # type: ignore[attr-defined]  # noqa: SLF001
    return client


def cut_power(agent: EdgeAgent) -> None:
    client = _paho(agent)
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        sock.close()  # no DISCONNECT: the broker sends the will


def restore_power(agent: EdgeAgent) -> None:
    client = _paho(agent)
    client.reconnect()
    client.loop_start()


def chill_dispenser(agent: EdgeAgent, device: str, *, broken: bool) -> None:
    """Break the heater (the water cools to 40 °C) or mend it (back to 95 °C)."""
    assert agent.simulation is not None  # noqa: S101 - the demo's agents are simulated
    with agent.simulation.lock:
        agent.simulation.sim.set_dispenser_cold(
            device, cold=broken, temp_c=40.0 if broken else 95.0
        )


def schedule_meter_reset(agent: EdgeAgent, device: str, at: datetime) -> None:
    assert agent.simulation is not None  # noqa: S101
    with agent.simulation.lock:
        agent.simulation.sim.schedule_meter_reset(device, at)
