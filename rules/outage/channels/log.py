"""The service's own log: each notice's text at WARNING (the default channel)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rules.outage.alerts import Notice
from rules.outage.channels.base import Delivery
from rules.outage.config import LogChannel

__all__ = ["LogDelivery"]

log = logging.getLogger("waystation.rules.notify")


class LogDelivery(Delivery[LogChannel]):
    def send(self, notices: Sequence[Notice]) -> None:
        title, text = self.renderer.text(notices)
        log.warning("%s\n%s", title, text)
