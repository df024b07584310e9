"""Dead-letter counts add up: the health dashboard's own query sums to what ingest counted.

All dead letters of a batch once shared one timestamp and tag set, so
InfluxDB kept one point a batch and the dashboard showed a fraction of them
(200,000 dead letters summed to 412). Two workers of a shared group dead-letter
thousands of messages at full speed here; the panel's query, with Grafana's
macros expanded, must return exactly the number each code was counted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dashboards.generate import render
from ingest.worker import IngestConfig, IngestWorker
from tests.helpers import wait_for
from tests.load import door_counter_registry
from tests.test_dashboards import expand, time_range
from waystation.contract import DeadLetterCode
from waystation.mqttclient import new_client
from waystation.registry import parse_registry
from waystation.settings import MqttSettings
from waystation.store import InfluxStore

pytestmark = pytest.mark.integration

PANEL = "死信 dead letters"
BAD_JSON = 2500
UNKNOWN = 500


def dashboard_sums(store: InfluxStore) -> dict[str, int]:
    board = json.loads(render("health"))
    [panel] = [p for p in board["panels"] if p.get("title") == PANEL]
    [target] = panel["targets"]
    query = expand(target["query"], time_range(board, datetime.now(UTC)), {})
    return {s.tags["code"]: sum(int(row[1] or 0) for row in s.values) for s in store.query(query)}


def test_the_dashboard_sums_every_dead_letter(
    mqtt_settings: MqttSettings, store: InfluxStore, uid: str
) -> None:
    station = f"dc-{uid}"
    registry = parse_registry(door_counter_registry(station, 2))
    configs = [
        IngestConfig(client_id=f"{w}-{uid}", topic_filter=f"stations/{station}/+/+", group=uid)
        for w in ("a", "b")
    ]
    publisher = new_client(mqtt_settings, f"pub-{uid}")
    publisher.max_inflight_messages_set(1000)
    publisher.max_queued_messages_set(0)
    acks: list[int] = []
    publisher.on_publish = lambda *_: acks.append(1)
    with (
        IngestWorker(mqtt_settings, store, registry, configs[0]) as a,
        IngestWorker(mqtt_settings, store, registry, configs[1]) as b,
    ):
        assert a.wait_subscribed()
        assert b.wait_subscribed()
        publisher.connect(mqtt_settings.host, mqtt_settings.port)
        publisher.loop_start()
        ghost = f"stations/{station}/ghost/telemetry"
        probes = 0

        def both_subscribed() -> bool:  # wait_subscribed returns before the SUBACK
            nonlocal probes
            publisher.publish(ghost, b"{}", 1)
            probes += 1
            return bool(a.deadletters.counts and b.deadletters.counts)

        try:
            wait_for(both_subscribed, "both workers to take messages")
            for n in range(BAD_JSON):
                publisher.publish(f"stations/{station}/{station}-d0/telemetry", b"{not json", 1)
                if n < UNKNOWN:
                    publisher.publish(ghost, b"{}", 1)
            total = BAD_JSON + UNKNOWN + probes
            wait_for(lambda: len(acks) == total, "the broker to take every message")
        finally:
            publisher.disconnect()
            publisher.loop_stop()

        def counted() -> dict[DeadLetterCode, int]:
            return dict(a.deadletters.counts + b.deadletters.counts)

        expected = {"bad_json": BAD_JSON, "unknown_device": UNKNOWN + probes}
        wait_for(lambda: counted() == expected, "both workers to count every dead letter", 60)
        wait_for(lambda: a.stats.acked + b.stats.acked >= total, "every ack")
    # The counts were written before the acks went out.
    assert dashboard_sums(store) == expected
