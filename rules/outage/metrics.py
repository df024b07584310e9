"""The rules service's `/metrics` (Prometheus, via prometheus_client), read at each scrape.

Connection (up, last connect, connects), whether verdicts are being given
(no data, no verdict), passes and their duration, alerts by state, and per
channel: notices waiting, delivered, retried, given up, and whether it is
failing. Names start `waystation_rules_`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rules.outage.alerts import AlertState

if TYPE_CHECKING:
    from rules.outage.service import RulesService

__all__ = ["RulesCollector"]

P = "waystation_rules"


class RulesCollector(Collector):
    def __init__(self, service: RulesService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        s = self.service
        yield GaugeMetricFamily(f"{P}_connected", "1 while subscribed to the broker",
                                value=int(s.session.subscribed))  # fmt: skip
        yield GaugeMetricFamily(
            f"{P}_verdicts", "1 while missing data may raise alerts (connected, grace over)",
            value=int(s.giving_verdicts),
        )  # fmt: skip
        yield GaugeMetricFamily(
            f"{P}_last_connect_timestamp_seconds", "time of the last (re)connect to the broker",
            value=s.session.last_connected_at or 0,
        )  # fmt: skip
        yield CounterMetricFamily(f"{P}_connects", "successful connects to the broker",
                                  value=s.session.connects)  # fmt: skip
        yield CounterMetricFamily(f"{P}_passes", "detection passes run", value=s.passes)
        yield CounterMetricFamily(
            f"{P}_notices_pruned", "given-up or orphaned notices dropped from the state file",
            value=s.notices_pruned,
        )  # fmt: skip
        yield CounterMetricFamily(
            f"{P}_passes_failed", "detection passes that raised", value=s.passes_failed
        )
        yield GaugeMetricFamily(
            f"{P}_state_failing", "1 while the state file takes no writes (notices kept in memory)",
            value=int(s.state_failing_since is not None),
        )  # fmt: skip
        yield GaugeMetricFamily(
            f"{P}_stream_proven",
            "1 while the broker is proven to deliver (the rules' own probe comes back)",
            value=int(s.stream_proven),
        )
        yield CounterMetricFamily(
            f"{P}_pass_seconds", "time spent in detection passes", value=s.pass_seconds
        )
        yield CounterMetricFamily(f"{P}_messages", "messages read off the broker", value=s.messages)
        yield CounterMetricFamily(
            f"{P}_invalid_messages", "messages skipped as invalid", value=s.invalid_messages
        )
        yield CounterMetricFamily(
            f"{P}_wills_held", "agents' offline statuses held for the grace period "
            "(they came with the loss of the broker, or retained on reconnecting)",
            value=s.wills_held,
        )  # fmt: skip
        by_state = GaugeMetricFamily(f"{P}_alerts", "alerts by state", labels=["state"])
        counts = s.alert_counts()
        for state in AlertState:
            by_state.add_metric([state.value], counts.get(state, 0))
        yield by_state
        waiting = GaugeMetricFamily(
            f"{P}_notices_pending", "notices waiting for their channel", labels=["channel"]
        )
        sent = CounterMetricFamily(f"{P}_notices_sent", "notices delivered", labels=["channel"])
        failed = GaugeMetricFamily(
            f"{P}_notices_failed", "notices given up (kept in the state file)", labels=["channel"]
        )
        retries = CounterMetricFamily(
            f"{P}_delivery_retries", "attempts that failed and were retried", labels=["channel"]
        )
        failing = GaugeMetricFamily(
            f"{P}_channel_failing_seconds", "how long the channel has been failing (0: fine)",
            labels=["channel"],
        )  # fmt: skip
        stored = s.state.notice_counts()
        for sender in s.senders:
            n_waiting, n_failed = stored.get(sender.label, (0, 0))
            waiting.add_metric([sender.label], n_waiting)
            failed.add_metric([sender.label], n_failed)
            sent.add_metric([sender.label], sender.stats.notices)
            retries.add_metric([sender.label], sender.stats.retries)
            failing.add_metric([sender.label], sender.failing_for_s)
        yield from (waiting, sent, failed, retries, failing)
