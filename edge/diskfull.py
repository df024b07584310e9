"""What the outbox does about a full disk, apart from SQL: a reserve, a cap, said once.

The trap: SQLite's write-ahead log holds recent pages that a checkpoint must
copy into the database file, which may have to grow; on a full disk it
cannot, the log cannot be reset, and then not even a deletion can be written.
So the outbox keeps a reserve file (RESERVE_BYTES, about twice the log's size)
and gives it back to the file system the moment SQLite says the disk is full:
the checkpoint then has room, the log is reset and reused in place, and the
oldest readings can be dropped to make room. From then on the database is
capped at the size it has (`capped`: make room by dropping before growing), so
it does not eat the reserve's space again. Every PROBE_EVERY_S the reserve is
made anew once the disk has room for it and as much again; then the disk has
room again and the cap is lifted. (Room for the reserve alone is the room the
outbox gave back itself: lifting the cap on it, the database grew into it and
hit the full disk again, and "full" and "room again" were said every probe.)

Logged once as it begins (`full`), once as it ends (the database grew past the
size at which it was full), and once if not even the newest readings could be
stored.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

__all__ = ["PROBE_EVERY_S", "RESERVE_BYTES", "DiskFull"]

log = logging.getLogger("edge.outbox")

# Twice the outbox's write-ahead log (256 pages of 4 KiB): what a checkpoint may need.
RESERVE_BYTES = 2 * 1024 * 1024
# While the disk is full, how often to try whether it has room again (by making the
# reserve anew: 2 MB written and synced, so not at every reading).
PROBE_EVERY_S = 10.0


class DiskFull:
    """State of one outbox file. Not thread-safe: the outbox calls it under its lock."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.reserve = db_path.with_name(db_path.name + "-reserve")
        self.full = False  # said "the disk is full", not yet "room again"
        self.capped = False  # the database may not grow: make room by dropping first
        self.losing = False  # not even the newest could be stored
        self._full_pages = 0
        self._dropped_at_full = 0
        self._next_probe = 0.0
        self.make_reserve()

    def make_reserve(self) -> bool:
        """Have the reserve file on disk; False if there is no room for it."""
        try:
            if self.reserve.exists() and self.reserve.stat().st_size == RESERVE_BYTES:
                return True
            with self.reserve.open("wb") as f:
                f.write(bytes(RESERVE_BYTES))  # written, not sparse: the space is really taken
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            self._give_back()
            return False
        return True

    def _give_back(self) -> None:
        try:
            self.reserve.unlink(missing_ok=True)
        except OSError:
            log.warning("outbox %s: cannot remove %s", self.db_path, self.reserve)

    def hit(self, pages: int, dropped_total: int) -> None:
        """SQLite said the disk is full (or the cap was reached)."""
        if not self.full:
            self.full = True
            self._full_pages = pages
            self._dropped_at_full = dropped_total
            log.warning(
                "outbox %s: the disk is full; dropping the oldest readings to keep the newest "
                "(counted in outbox_dropped_total)", self.db_path,
            )  # fmt: skip
        if not self.capped:
            self.capped = True
            self._give_back()  # room for the checkpoint that follows
            self._next_probe = time.monotonic() + PROBE_EVERY_S

    def probe(self) -> None:
        """Now and then while capped: with room for the reserve and for the database to grow
        as much again, make the reserve again and lift the cap."""
        if self.capped and time.monotonic() >= self._next_probe:
            self._next_probe = time.monotonic() + PROBE_EVERY_S
            if self._free_bytes() >= 2 * RESERVE_BYTES and self.make_reserve():
                self.capped = False  # if the file still cannot grow, the next write says so

    def _free_bytes(self) -> int:
        try:
            st = os.statvfs(self.db_path.parent)
        except OSError:
            return 0
        return st.f_bavail * st.f_frsize

    def stored(self, pages: int, dropped_total: int) -> None:
        """A write went through."""
        self.losing = False
        if self.full and not self.capped and pages > self._full_pages:
            self.full = False
            log.warning(
                "outbox %s has room again; %d readings were dropped while the disk was full",
                self.db_path, dropped_total - self._dropped_at_full,
            )  # fmt: skip

    def lost(self) -> None:
        """Nothing could be written, not even by dropping the oldest."""
        if not self.losing:
            self.losing = True
            log.warning(
                "outbox %s: the disk is too full to store even the newest readings; they are "
                "counted as dropped until there is room", self.db_path,
            )  # fmt: skip
