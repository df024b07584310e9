"""Channels from the rules settings: a sender (queue, rate limit, retries) for each."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rules.outage.channels import build_delivery
from rules.outage.channels.base import ChannelContext, ChannelSender, NoticeQueue, RateLimiter
from rules.outage.config import ChannelConfig, parse_rate
from rules.outage.messages import Renderer

__all__ = ["build_senders"]

log = logging.getLogger("waystation.rules.notify")


def build_senders(
    channels: Sequence[ChannelConfig],
    renderer: Renderer,
    context: ChannelContext,
    queue: NoticeQueue,
    *,
    retry_for_s: float,
    failing_after_s: float,
) -> list[ChannelSender]:
    """A sender per channel, known by its name (unique: the settings check it).

    Notices wait in the state file under that name, so a channel keeps its
    notices when others are added or removed around it.
    """
    senders = []
    for c in channels:
        label = c.label
        if "max_attempts" in c.model_fields_set:
            log.warning(
                "channel %s: max_attempts is no longer used: notices are retried until "
                "delivered (timing.notice_retry_for)",
                label,
            )
        count, period = parse_rate(c.rate)
        senders.append(
            ChannelSender(
                label,
                build_delivery(c, renderer, context),
                RateLimiter(count, period),
                queue,
                retry_for_s=retry_for_s,
                failing_after_s=failing_after_s,
            )
        )
    return senders
