"""The edge outbox: every reading is on disk before it is published (SPEC §6).

SQLite in WAL mode with `synchronous=FULL`: a reading whose `put` returned is
on disk and survives kill -9 and a power cut, and SQLite's journal keeps the
file consistent through both. A reading leaves only when the broker has
acknowledged the message that carried it (`delete` after PUBACK).

Bounded by count and by age; past either bound the oldest readings go first,
and the number dropped is kept in the database so it survives restarts and
is reported in the gateway's readings.

`seq` (SPEC §4: strictly increasing per device, across restarts) lives in the
same database and is incremented in the same transaction as the insert. A
device new to this outbox starts at the clock in milliseconds, so even an
outbox lost with its SD card restarts above every seq used before.

Thread-safety: one connection guarded by a lock; pollers `put`, the publisher
reads and deletes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

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
# Checking the age bound on every put would cost an index scan each time.
AGE_CHECK_EVERY = 1000


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
        self._db.executescript(_SCHEMA)
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
        self._seqs: dict[str, int] = dict(self._db.execute("SELECT device, seq FROM seqs"))
        self._puts = 0

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
        return int(row[0])

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
                reading = {"v": 1, "kind": kind, "ts": ts_ms, "seq": seq, "data": data}
                rows.append((device, ts_ms, json.dumps(reading, separators=(",", ":"))))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO seqs VALUES (?, ?) "
                    "ON CONFLICT(device) DO UPDATE SET seq=excluded.seq",
                    [(d, s) for d, s in seqs.items() if self._seqs.get(d) != s],
                )
                self._db.executemany(
                    "INSERT INTO readings (device, ts, payload) VALUES (?, ?, ?)", rows
                )
                dropped = self._enforce_bounds_locked(self._depth + len(rows))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._seqs = seqs
            self._depth += len(rows) - dropped
            return out

    def _enforce_bounds_locked(self, depth: int) -> int:
        """Inside a transaction: drop the oldest past the count (and, now and then, age) bound."""
        dropped = 0
        if depth > self.max_readings:
            excess = depth - self.max_readings
            self._db.execute(
                "DELETE FROM readings WHERE id IN (SELECT id FROM readings ORDER BY id LIMIT ?)",
                (excess,),
            )
            dropped += excess
        self._puts += 1
        if self._puts % AGE_CHECK_EVERY == 0:
            dropped += self._drop_older_locked()
        self._count_dropped_locked(dropped)
        return dropped

    def _count_dropped_locked(self, n: int) -> None:
        if n:
            self._db.execute(
                "UPDATE counters SET value = value + ? WHERE name='dropped_total'", (n,)
            )

    def _drop_older_locked(self) -> int:
        cutoff = int((self._clock() - self.max_age.total_seconds()) * 1000)
        return self._db.execute("DELETE FROM readings WHERE ts < ?", (cutoff,)).rowcount

    def expire(self) -> int:
        """Drop readings older than max_age now (the publisher calls this periodically)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            n = self._drop_older_locked()
            self._count_dropped_locked(n)
            self._db.execute("COMMIT")
            self._depth -= n
            return n

    # --- reading and acknowledging ----------------------------------------------------

    def after(self, last_id: int, limit: int) -> list[OutboxRow]:
        """The oldest `limit` readings with an id above `last_id`, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, device, payload FROM readings WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        return [OutboxRow(*r) for r in rows]

    def delete(self, ids: Iterable[int]) -> int:
        """Remove acknowledged readings (in one transaction); return how many were there."""
        id_list = list(ids)
        if not id_list:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.executemany("DELETE FROM readings WHERE id = ?", ((i,) for i in id_list))
            self._db.execute("COMMIT")
            self._depth -= cur.rowcount
            return cur.rowcount
