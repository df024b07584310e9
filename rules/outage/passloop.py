"""The thread that runs the rules' passes: every `every_s`, and sooner when asked.

An agent's will asks for a pass (after it settles), a station group's timer
asks for one when it falls due; requests made while a pass runs are served by
the next. One thread, so passes never overlap and nothing queues up behind a
slow one (an alert storm costs one long pass, not a pile of waiting jobs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from waystation.logthrottle import Repeats

__all__ = ["PassLoop"]

log = logging.getLogger("waystation.rules")


class PassLoop:
    def __init__(self, run: Callable[[], None], every_s: float, first_in_s: float = 0.0) -> None:
        self._run = run
        self.every_s = every_s
        self._cond = threading.Condition()
        self._stopping = False
        self._next_scan = time.monotonic() + first_in_s
        self._asked: float | None = None  # monotonic time of the earliest request
        self._repeats = Repeats(log)
        self.last_pass_at: float | None = None  # monotonic end of the last pass that worked
        self.failed = 0  # passes that raised (health fails once passes stop working)
        self._thread = threading.Thread(target=self._loop, name="rules-passes", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def run_in(self, delay_s: float) -> None:
        """A pass no later than `delay_s` from now (and the regular ones as usual)."""
        at = time.monotonic() + max(delay_s, 0.0)
        with self._cond:
            if self._asked is None or at < self._asked:
                self._asked = at
                self._cond.notify()

    def _due(self) -> float:
        return self._next_scan if self._asked is None else min(self._next_scan, self._asked)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (wait := self._due() - time.monotonic()) > 0:
                    self._cond.wait(wait)
                if self._stopping:
                    return
                now = time.monotonic()
                if self._asked is not None and self._asked <= now:
                    self._asked = None
                if self._next_scan <= now:
                    self._next_scan = now + self.every_s
            try:
                self._run()
            except Exception:  # noqa: BLE001 - a task boundary, logged with its traceback
                self.failed += 1
                self._repeats.log(logging.ERROR, "pass", "a rules pass failed", exc_info=True)
            else:
                self.last_pass_at = time.monotonic()
                if self._repeats.clear("pass") is not None:
                    log.warning("rules passes work again")
