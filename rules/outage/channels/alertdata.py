"""The one JSON shape of an alert, for every channel that sends data (webhook, MQTT)."""

from __future__ import annotations

from rules.outage.alerts import Alert
from rules.outage.messages import Renderer
from waystation.contract import AlertItem

__all__ = ["alert_item"]


def alert_item(alert: Alert, renderer: Renderer) -> AlertItem:
    return AlertItem(
        key=alert.key,
        rule=alert.rule.value,
        device=alert.device,
        severity=alert.severity,
        state=alert.state.value,
        since=alert.since_ms,
        resolved=alert.resolved_ms,
        detail=alert.detail,
        text=renderer.alert_line(alert),
    )
