"""The rules trust a topic's station only when the registry agrees (real broker, real ACL).

A station's gateway may publish anything under its own station's topics, so
station A's credentials could publish a retained `offline` for station B's
gateway under A's topic and, before, raise B's agent-offline alert. Now the
rules ignore it and count it, as ingest dead-letters it as `wrong_station`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rules.outage.config import RulesConfig
from rules.outage.service import RulesService
from tests.accounts import secured_broker, two_stations
from tests.helpers import MqttSpy, wait_for

pytestmark = pytest.mark.integration


def test_a_station_cannot_report_another_stations_agent_offline(tmp_path: Path) -> None:
    registry = two_stations()
    with secured_broker(registry, tmp_path) as broker:
        service = RulesService(
            broker.as_user("waystation-rules-1"), registry, RulesConfig(), tmp_path / "state.db"
        )
        with service:
            assert service.wait_subscribed()
            now = int(time.time() * 1000)
            offline = {"v": 1, "ts": now, "state": "offline", "agent": "x/1"}
            door = {"v": 1, "kind": "door_counter", "ts": now + 5000, "seq": 1,
                    "data": {"in_total": 1, "out_total": 1}}  # fmt: skip
            with MqttSpy(broker.as_user("st-a-gw"), "st-a-gw", []) as station_a:
                # The ACL lets A's gateway publish this: it is under A's own topics.
                info = station_a.client.publish(
                    "stations/st-a/st-b-gw/status", json.dumps(offline), qos=1, retain=True
                )
                info.wait_for_publish(5)
                assert info.is_published()
                # A's own reading after it, on the same connection: once the rules
                # have it, they have had the status too.
                station_a.publish("stations/st-a/st-a-door/telemetry", json.dumps(door))
            wait_for(lambda: service.obs.devices["st-a-door"].last_seen_ms == now + 5000,
                     "A's reading at the rules")  # fmt: skip
            passes = service.passes
            wait_for(lambda: service.passes >= passes + 2, "two passes after it")
            assert not [a for a in service.book.alerts.values() if a.station == "st-b"]
            assert service.obs.devices["st-b-gw"].offline_since_ms is None
            assert service.ignored == {"wrong_station": 1}
