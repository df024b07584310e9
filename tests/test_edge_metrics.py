"""The edge agent's /healthz, /readyz and /metrics: its connection and its outbox, as a scrape sees them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.localservers import MosquittoServer
from edge.agent import EdgeAgent
from edge.config import AgentConfig
from tests.helpers import http_get, station_registry, wait_for
from waystation.health import HealthServer
from waystation.settings import MqttSettings

pytestmark = pytest.mark.integration


def _metrics(port: int) -> dict[str, float]:
    _, text = http_get(port, "/metrics")
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_agent_reports_its_connection_and_outbox(
    tmp_path: Path, own_mosquitto: MosquittoServer, uid: str
) -> None:
    station = f"st-{uid}"
    config = AgentConfig.from_registry(
        station_registry(station), station, outbox=tmp_path / "outbox.db",
        interval=timedelta(seconds=0.2),
    )  # fmt: skip
    agent = EdgeAgent(config, MqttSettings.from_url(own_mosquitto.url))
    health = HealthServer(agent, 0)
    with agent:
        health.start()
        try:
            assert agent.wait_connected()
            wait_for(lambda: _metrics(health.port).get("waystation_edge_readings_acked_total", 0) > 0,
                     "acknowledged readings counted")  # fmt: skip
            m = _metrics(health.port)
            assert m["waystation_edge_connected"] == 1
            assert m["waystation_edge_connects_total"] == 1
            assert m["waystation_edge_last_connect_timestamp_seconds"] > 0
            assert http_get(health.port, "/readyz")[0] == 200
            own_mosquitto.stop()
            wait_for(lambda: _metrics(health.port)["waystation_edge_connected"] == 0, "the loss")
            wait_for(lambda: _metrics(health.port)["waystation_edge_outbox_depth"] >= 20,
                     "readings waiting in the outbox")  # fmt: skip
            assert http_get(health.port, "/readyz")[0] == 503
            assert http_get(health.port, "/healthz")[0] == 200  # alive, only not connected
            own_mosquitto.start()
            wait_for(lambda: _metrics(health.port)["waystation_edge_connects_total"] == 2, "back")
            wait_for(lambda: _metrics(health.port)["waystation_edge_outbox_depth"] < 20, "drained")
        finally:
            health.stop()
