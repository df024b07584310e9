"""Splitting the stations between ingest workers by a stable hash of the station id.

MQTT wildcards match whole levels, so a hash cannot be a topic filter, and a
topic prefix would change the contract (SPEC §4). A partition worker
subscribes to `stations/{id}/+/+` for each of its stations instead: plain
subscriptions of a persistent session, which Mosquitto 2.0 restores after a
restart (shared subscriptions it does not). The hash is CRC-32 of the id,
the same in every process, host and Python version (`hash()` is salted).

What it costs and what to mind (README, Scaling): about 1.7 KB of broker
memory a subscription; a station missing from the worker's registry has no
subscriber, so the broker drops its messages (the ACLs from the same registry
keep such a station off the broker); changing N moves stations between
sessions, so drain the old workers first.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from waystation.contract import STATIONS
from waystation.registry import Registry

__all__ = ["Partition", "partition_of"]

_SPEC = re.compile(r"^(\d+)/(\d+)$")


def partition_of(station: str, count: int) -> int:
    """The partition (0..count-1) a station belongs to."""
    return zlib.crc32(station.encode()) % count


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index}/{self.count}: needs 0 <= i < N")

    @classmethod
    def parse(cls, text: str) -> Partition:
        """`i/N`, e.g. `0/2` and `1/2` for two workers."""
        match = _SPEC.match(text.strip())
        if not match:
            raise ValueError(f"partition {text!r} is not i/N (e.g. 0/2)")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def stations(self, registry: Registry) -> list[str]:
        return [s for s in registry.stations if partition_of(s, self.count) == self.index]

    def filters(self, registry: Registry) -> tuple[str, ...]:
        return tuple(f"{STATIONS}/{s}/+/+" for s in self.stations(registry))
