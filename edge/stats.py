"""What the edge agent counts: its pollers and its publisher add, `/metrics` and the log read."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AgentStats"]


@dataclass
class AgentStats:
    """Plain ints, each written by one thread (its pollers' or the publisher's), read by any."""

    readings: int = 0
    held_for_clock: int = 0
    read_failures: int = 0
    invalid_readings: int = 0
    messages_published: int = 0
    readings_acked: int = 0
    readings_refused: int = 0  # by the broker (PUBACK reason >= 0x80); kept in the outbox
