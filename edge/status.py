"""The statuses the agent publishes, retained: its own and each of its devices'."""

from __future__ import annotations

from collections.abc import Callable

from waystation import __version__
from waystation.contract import TS_MIN_MS, StatusState, status_json

__all__ = ["AGENT_NAME", "status_payload"]

AGENT_NAME = f"waystation-edge/{__version__}"


def status_payload(state: StatusState, clock: Callable[[], float]) -> str:
    """`online` or `offline` (the will, an unreachable device), stamped now (never before 2020)."""
    return status_json(state, max(int(clock() * 1000), TS_MIN_MS), AGENT_NAME)
