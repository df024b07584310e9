"""The edge agent's `/metrics` (Prometheus, via prometheus_client), read at each scrape.

What a station box can say about itself beyond its gateway readings: whether
it is connected to the broker and since when, how much waits in its outbox,
what was dropped, read and acknowledged. Names start `waystation_edge_`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from edge.agent import EdgeAgent

__all__ = ["AgentCollector"]

P = "waystation_edge"


class AgentCollector(Collector):
    def __init__(self, agent: EdgeAgent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Metric]:
        a = self.agent
        labels = ["station", "agent"]
        ids = [a.station_id, a.agent_device]

        def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(f"{P}_{name}", text, labels=labels)
            g.add_metric(ids, value)
            return g

        def counter(name: str, text: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(f"{P}_{name}", text, labels=labels)
            c.add_metric(ids, value)
            return c

        yield gauge("connected", "1 while connected to the broker", int(a.connected))
        yield gauge(
            "last_connect_timestamp_seconds",
            "time of the last (re)connect to the broker",
            a.last_connected_at or 0,
        )
        yield counter("connects", "successful connects to the broker", a.connects)
        yield gauge("outbox_depth", "readings waiting in the outbox", a.outbox.depth)
        yield counter(
            "outbox_dropped", "oldest readings dropped past the bounds", a.outbox.dropped_total
        )
        s = a.stats
        yield counter("readings", "readings taken from the devices", s.readings)
        yield counter("read_failures", "device reads that failed", s.read_failures)
        yield counter("readings_acked", "readings the broker acknowledged", s.readings_acked)
        yield counter("messages_published", "messages published", s.messages_published)
        yield gauge("devices_unreachable", "devices not answering now", a.unreachable_devices)
