"""The edge outbox: every reading is on disk before it is published (SPEC §6).

SQLite in WAL mode with `synchronous=FULL`: a reading whose `put` returned is
on disk and survives kill -9 and a power cut, and SQLite's journal keeps the
file consistent through both. A reading leaves only when the broker has
acknowledged the message that carried it (`delete` after PUBACK).

Bounded by count and by age; past either bound the oldest readings go first,
and the number dropped is kept in the database so it survives restarts and
is reported in the gateway's readings.

A full disk is a third bound (SPEC §6: degrade, never lose the newest
silently). When SQLite says "database or disk is full", the outbox gives
back its reserve file, checkpoints its write-ahead log (which SQLite then
reuses in place rather than growing) and drops the oldest readings, 1 % of
the outbox at a time, until the new ones fit; the drops are counted like the
others (edge/diskfull.py has the reserve, the cap and the logging). A write
that fails never leaves a transaction open, so the outbox recovers by itself
when space returns. Only when nothing can be written at all are new readings
lost, and then they are counted too, in memory until the next write. The
write-ahead log is kept small (checkpoints at WAL_PAGES, trimmed back to that
size), so little space is tied up in it when the disk fills.

`seq` (SPEC §4: strictly increasing per device, across restarts) lives in the
same database and is incremented in the same transaction as the insert. A
device new to this outbox starts at the clock in milliseconds, so even an
outbox lost with its SD card restarts above every seq used before.

Thread-safety: one connection guarded by a lock; pollers `put`, the publisher
reads and deletes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

from edge.diskfull import DiskFull
from waystation.contract import reading_json

__all__ = ["Outbox", "OutboxRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    ts INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
CREATE TABLE IF NOT EXISTS seqs (device TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('dropped_total', 0);
"""
_DELETE_OLDEST = "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)"
# Checking the age bound on every put would cost an index scan each time.
AGE_CHECK_EVERY = 1000
# Pages in the write-ahead log before a checkpoint moves them into the database
# file, and the size the log file is trimmed back to (SQLite's default is 1000
# pages, 4 MB, which a nearly full disk may not have).
WAL_PAGES = 256
PAGE_BYTES = 4096
# On a full disk: drop at least this many of the oldest readings (and at least
# 1 % of the outbox), doubling for each retry, at most this many rounds a write.
ROOM_MIN_READINGS = 100
ROOM_ROUNDS = 12


def _disk_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _pages_for(rows: list[tuple[str, int, str]]) -> int:
    """Free pages to have before inserting: the rows' bytes twice over, and two pages."""
    return 2 * sum(len(r[2]) for r in rows) // PAGE_BYTES + 2


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    device: str
    payload: str


class Outbox:
    """A bounded, durable FIFO of readings. A context manager: exit closes the file."""

    def __init__(
        self,
        path: Path,
        *,
        max_readings: int,
        max_age: timedelta,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be at least 1")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_readings = max_readings
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_PAGES * PAGE_BYTES}")
        self._db.executescript(_SCHEMA)
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        self._seqs: dict[str, int] = dict(self._db.execute("SELECT device, seq FROM seqs"))
        self._puts = 0
        self._room = DiskFull(path)
        self._unsaved_drops = 0  # dropped while nothing could be written; saved with the next
        self._pending_deletes: list[int] = []  # acknowledged, not yet deleted (disk full)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- state ----------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def dropped_total(self) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM counters WHERE name='dropped_total'"
            ).fetchone()
            return int(row[0]) + self._unsaved_drops

    @property
    def disk_full(self) -> bool:
        """Since SQLite said the disk is full, until the database could grow again."""
        return self._room.full

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT; whatever fails, no transaction is left open."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (disk full)
                self._db.execute("ROLLBACK")
            raise

    def last_seq(self, device: str) -> int | None:
        return self._seqs.get(device)

    # --- writing --------------------------------------------------------------------

    def put(self, device: str, kind: str, ts_ms: int, data: dict[str, Any]) -> int:
        """Store one reading durably; return its seq. Drops the oldest past the bounds."""
        return self.put_many([(device, kind, ts_ms, data)])[0]

    def put_many(self, readings: Iterable[tuple[str, str, int, dict[str, Any]]]) -> list[int]:
        """Store readings (device, kind, ts_ms, data) in one transaction; return their seqs."""
        with self._lock:
            seqs = dict(self._seqs)
            rows, out = [], []
            for device, kind, ts_ms, data in readings:
                seq = seqs.get(device)
                seq = int(self._clock() * 1000) if seq is None else seq + 1
                seqs[device] = seq
                out.append(seq)
                rows.append((device, ts_ms, reading_json(kind, ts_ms, seq, data)))
            changed = [(d, s) for d, s in seqs.items() if self._seqs.get(d) != s]
            if not self._insert_making_room_locked(changed, rows):
                # Nothing could be written: counted, and the seqs go on (a gap says it).
                self._unsaved_drops += len(rows)
                self._room.lost()
            self._seqs = seqs
            return out

    def _insert_locked(
        self, changed: list[tuple[str, int]], rows: list[tuple[str, int, str]]
    ) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT INTO seqs VALUES (?, ?) ON CONFLICT(device) DO UPDATE SET seq=excluded.seq",
                changed,
            )
            self._db.executemany(
                "INSERT INTO readings (device, ts, payload) VALUES (?, ?, ?)", rows
            )
            dropped = self._enforce_bounds_locked(self._depth + len(rows))
        self._depth += len(rows) - dropped
        self._unsaved_drops = 0  # saved by _count_dropped_locked in that transaction

    def _insert_making_room_locked(
        self, changed: list[tuple[str, int]], rows: list[tuple[str, int, str]]
    ) -> bool:
        """Insert; on a full disk drop the oldest until it fits. False: nothing could be written."""
        self._room.probe()
        for attempt in range(ROOM_ROUNDS):
            if self._try_insert_locked(changed, rows):
                if self._room.full or self._room.losing:
                    self._room.stored(self._pages(), self._dropped_total_locked())
                return True
            self._disk_full_locked()
            step = max(len(rows), self._depth // 100, ROOM_MIN_READINGS) * 2**attempt
            if not self._drop_oldest_locked(step) and attempt:
                break  # nothing left to drop, or not even a deletion can be written
        return False

    def _try_insert_locked(
        self, changed: list[tuple[str, int]], rows: list[tuple[str, int, str]]
    ) -> bool:
        """Insert; False if there is no room (the disk is full, or the file is capped)."""
        if self._room.capped and self._free_pages() < _pages_for(rows):
            return False
        try:
            self._insert_locked(changed, rows)
        except sqlite3.OperationalError as exc:
            if not _disk_full(exc):
                raise
            return False
        return True

    def _pages(self) -> int:
        return int(self._db.execute("PRAGMA page_count").fetchone()[0])

    def _free_pages(self) -> int:
        return int(self._db.execute("PRAGMA freelist_count").fetchone()[0])

    def _disk_full_locked(self) -> None:
        self._room.hit(self._pages(), self._dropped_total_locked())
        self._checkpoint_locked()

    def _checkpoint_locked(self) -> None:
        """Move the write-ahead log into the database file, so SQLite reuses the log in place."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(RESTART)")
        except sqlite3.OperationalError as exc:
            if not _disk_full(exc):
                raise

    def _drop_oldest_locked(self, n: int) -> int:
        """Drop the `n` oldest readings to make room; 0 if none, or if that cannot be written."""
        try:
            with self._transaction():
                cur = self._db.execute(_DELETE_OLDEST, (n,))
                dropped = cur.rowcount
                self._count_dropped_locked(dropped)
        except sqlite3.OperationalError as exc:
            if not _disk_full(exc):
                raise
            return 0
        self._depth -= dropped
        self._unsaved_drops = 0
        self._checkpoint_locked()
        return dropped

    def _dropped_total_locked(self) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name='dropped_total'").fetchone()
        return int(row[0]) + self._unsaved_drops

    def _enforce_bounds_locked(self, depth: int) -> int:
        """Inside a transaction: drop the oldest past the count (and, now and then, age) bound."""
        dropped = 0
        if depth > self.max_readings:
            excess = depth - self.max_readings
            self._db.execute(_DELETE_OLDEST, (excess,))
            dropped += excess
        self._puts += 1
        if self._puts % AGE_CHECK_EVERY == 0:
            dropped += self._drop_older_locked()
        self._count_dropped_locked(dropped)
        return dropped

    def _count_dropped_locked(self, n: int) -> None:
        """Inside a transaction: add `n` and whatever could not be saved before."""
        if n or self._unsaved_drops:
            self._db.execute(
                "UPDATE counters SET value = value + ? WHERE name='dropped_total'",
                (n + self._unsaved_drops,),
            )

    def _drop_older_locked(self) -> int:
        cutoff = int((self._clock() - self.max_age.total_seconds()) * 1000)
        return self._db.execute("DELETE FROM readings WHERE ts < ?", (cutoff,)).rowcount

    def expire(self) -> int:
        """Drop readings older than max_age now (the publisher calls this periodically)."""
        with self._lock:
            try:
                with self._transaction():
                    n = self._drop_older_locked()
                    self._count_dropped_locked(n)
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                return 0  # the next time, or the next put makes room
            self._unsaved_drops = 0
            self._depth -= n
            return n

    # --- reading and acknowledging ----------------------------------------------------

    def after(self, last_id: int, limit: int, exclude: Sequence[str] = ()) -> list[OutboxRow]:
        """The oldest `limit` readings with an id above `last_id`, in order, leaving out
        the devices in `exclude`."""
        marks = ",".join("?" * len(exclude))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, device, payload FROM readings WHERE id > ? "  # noqa: S608 - only ?s
                f"AND device NOT IN ({marks}) ORDER BY id LIMIT ?",
                (last_id, *exclude, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def delete(self, ids: Iterable[int]) -> int:
        """Remove acknowledged readings (in one transaction); return how many were there.

        On a full disk the log is checkpointed and the deletion tried again; if
        it still cannot be written, the ids wait for the next call (a restart
        before then sends those readings again, which ingest absorbs).
        """
        with self._lock:
            id_list = self._pending_deletes + list(ids)
            self._pending_deletes = []
            if not id_list:
                return 0
            for attempt in range(2):
                try:
                    with self._transaction():
                        cur = self._db.executemany(
                            "DELETE FROM readings WHERE id = ?", ((i,) for i in id_list)
                        )
                except sqlite3.OperationalError as exc:
                    if not _disk_full(exc):
                        raise
                    if attempt == 0:
                        self._disk_full_locked()
                else:
                    self._depth -= cur.rowcount
                    return cur.rowcount
            self._pending_deletes = id_list
            return 0
