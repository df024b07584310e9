"""Repeated warnings, said once and then counted: "still unreachable after 5 min (23 times)".

A condition that repeats (a broker that stays unreachable, a channel that
keeps failing, InfluxDB down) is logged when it starts, then at most once per
`every_s` with how many times it happened since and for how long, and once
more when it ends (`clear`). Keys name the condition; each has its own clock.

Thread-safe: paho's thread, the pass thread and the senders may share one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Repeats", "format_duration"]

EVERY_S = 300.0  # one line per condition per 5 minutes, whatever its rate


def format_duration(seconds: float) -> str:
    """`45 s`, `3 min`, `2 h 5 min`: how long something has lasted, for a log line."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@dataclass
class _Run:
    started: float
    last_logged: float
    count: int = 1  # occurrences since the condition began
    unlogged: int = 0  # occurrences since the last line


class Repeats:
    def __init__(
        self,
        logger: logging.Logger,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.every_s = every_s
        self.clock = clock
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """Log `msg` the first time, then every `every_s` with the count; True if it logged."""
        return self.log(logging.WARNING, key, msg, *args)

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: bool = False) -> bool:
        now = self.clock()
        with self._lock:
            run = self._runs.get(key)
            if run is None:
                self._runs[key] = _Run(started=now, last_logged=now)
                suffix = ""
            else:
                run.count += 1
                run.unlogged += 1
                if now - run.last_logged < self.every_s:
                    return False
                suffix = (
                    f" (still, after {format_duration(now - run.started)}; "
                    f"{run.unlogged} more time(s) since the last report)"
                )
                run.last_logged = now
                run.unlogged = 0
        self.logger.log(level, "%s%s", msg % args if args else msg, suffix, exc_info=exc_info)
        return True

    def active(self, key: str) -> bool:
        with self._lock:
            return key in self._runs

    def clear(self, key: str) -> tuple[float, int] | None:
        """The condition is over: (how long it lasted in s, how often it happened), or None."""
        with self._lock:
            run = self._runs.pop(key, None)
        if run is None:
            return None
        return self.clock() - run.started, run.count
