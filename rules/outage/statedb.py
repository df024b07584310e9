"""The rules' local state (SQLite): alerts, group timers, silences and the notices to send.

A restart reloads the alerts with what was already notified (on which routing
targets), so it neither sends a notice twice nor forgets to send a resolution. Silences are written
here by `waystation silence` and read by the running service every pass.
Notices wait here, per channel, until the channel delivered them (or gave
up on them for good, which is kept and counted for a week, then pruned):
they are written in the same transaction that marks their alerts notified.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from rules.outage.alerts import LEGACY_NOTIFIED, Alert, AlertBook, AlertState, Group, Notice
from rules.outage.detect import Rule
from rules.outage.notices import decode, encode
from rules.outage.routing import ROOT

__all__ = ["PendingNotice", "RulesState", "Silence", "StateError", "StateInUse", "StateLock"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY, rule TEXT NOT NULL, station TEXT NOT NULL, device TEXT,
    since_ms INTEGER NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL,
    fired_ms INTEGER, resolved_ms INTEGER,
    notified INTEGER NOT NULL, inhibited INTEGER NOT NULL, silenced INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS route_groups (
    target TEXT NOT NULL, station TEXT NOT NULL, changed_ms INTEGER, last_sent_ms INTEGER,
    PRIMARY KEY (target, station)
);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, station TEXT NOT NULL,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, station TEXT NOT NULL,
    body TEXT NOT NULL, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, failed_ms INTEGER
);
CREATE INDEX IF NOT EXISTS notices_waiting ON notices (channel, failed_ms, id);
"""


class StateInUse(Exception):
    """Another rules service runs on this state file."""


class StateLock:
    """The running service's claim on its state file (`<file>.lock`, flock): a second
    service on the same file would send the first one's notices. `waystation silence`
    writes the file without it."""

    def __init__(self, state_path: Path) -> None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        self.path = state_path.with_name(state_path.name + ".lock")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise StateInUse(
                f"另一个告警服务（进程 {holder}）正在使用状态文件 {state_path}；"
                f"每个服务须用自己的 --state\n"
                f"  another rules service (pid {holder}) uses the state file {state_path}; "
                f"give each its own --state"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the lock
            self._fd = -1


class StateError(Exception):
    """The state file could not be written (a full disk, an I/O error); nothing was changed."""


@contextmanager
def _writing(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:  # SQLite rolls a failed statement's transaction back itself
        raise StateError(f"{what}: {exc}") from exc


@dataclass(frozen=True)
class PendingNotice:
    id: int
    station: str
    notice: Notice
    created_ms: int
    attempts: int


@dataclass(frozen=True)
class Silence:
    id: int
    station: str
    start_ms: int
    end_ms: int
    reason: str


class RulesState:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._migrate()
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        """A state file from before routing: its groups were the root's, notified meant all."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(alerts)")}
        if "notified_on" not in columns:
            self._db.execute("ALTER TABLE alerts ADD COLUMN notified_on TEXT")
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if "groups" in tables:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO route_groups SELECT ?, station, changed_ms, last_sent_ms "
                "FROM groups",
                (ROOT,),
            )
            self._db.execute("DROP TABLE groups")
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def load_book(self) -> AlertBook:
        book = AlertBook()
        with self._lock:
            for row in self._db.execute(
                "SELECT key, rule, station, device, since_ms, state, detail, fired_ms, "
                "resolved_ms, notified, inhibited, silenced, notified_on FROM alerts"
            ):
                key, rule, station, device, since, state, detail, fired, resolved, n, i, s, on = row
                notified_on = set(json.loads(on)) if on else {LEGACY_NOTIFIED} if n else set()
                book.alerts[key] = Alert(
                    key, Rule(rule), station, device, since, AlertState(state), detail,
                    fired, resolved, notified_on=notified_on, inhibited=bool(i), silenced=bool(s),
                )  # fmt: skip
            for target, station, changed, sent in self._db.execute(
                "SELECT target, station, changed_ms, last_sent_ms FROM route_groups"
            ):
                book.groups[(target, station)] = Group(changed, sent)
        return book

    def save(
        self,
        book: AlertBook,
        outgoing: Sequence[tuple[str, Notice]] = (),
        *,
        now_ms: int | None = None,
    ) -> None:
        """Write what changed since the last save and the notices to send (as of `now_ms`,
        default now), in one transaction."""
        created_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        if not book.changed and not book.removed and not book.groups_changed and not outgoing:
            return
        rows = [
            (a.key, a.rule.value, a.station, a.device, a.since_ms, a.state.value, a.detail,
             a.fired_ms, a.resolved_ms, int(a.notified), int(a.inhibited), int(a.silenced),
             json.dumps(sorted(a.notified_on)))
            for key in book.changed
            if (a := book.alerts.get(key)) is not None
        ]  # fmt: skip
        with self._lock, _writing("saving the alerts and their notices"):
            try:
                self._save(rows, book, outgoing, created_ms)
            except sqlite3.Error:
                if self._db.in_transaction:  # usually SQLite has rolled it back already
                    with suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise
        book.changed.clear()
        book.removed.clear()
        book.groups_changed = False

    def _save(
        self,
        rows: Sequence[tuple[object, ...]],
        book: AlertBook,
        outgoing: Sequence[tuple[str, Notice]],
        created_ms: int,
    ) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO alerts (key, rule, station, device, since_ms, state, "
            "detail, fired_ms, resolved_ms, notified, inhibited, silenced, notified_on) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        self._db.executemany("DELETE FROM alerts WHERE key = ?", [(k,) for k in book.removed])
        self._db.execute("DELETE FROM route_groups")
        self._db.executemany(
            "INSERT INTO route_groups VALUES (?,?,?,?)",
            [(t, s, g.changed_ms, g.last_sent_ms) for (t, s), g in book.groups.items()],
        )
        self._db.executemany(
            "INSERT INTO notices (channel, station, body, created_ms) VALUES (?,?,?,?)",
            [(channel, n.station, encode(n), created_ms) for channel, n in outgoing],
        )
        self._db.execute("COMMIT")

    # --- the notices waiting for each channel --------------------------------------------

    def pending(self, channel: str) -> list[PendingNotice]:
        """The channel's notices not yet delivered nor given up, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, station, body, created_ms, attempts FROM notices "
                "WHERE channel = ? AND failed_ms IS NULL ORDER BY id",
                (channel,),
            ).fetchall()
        return [PendingNotice(i, st, decode(body), at, n) for i, st, body, at, n in rows]

    def delivered(self, ids: Sequence[int]) -> None:
        with self._lock, _writing("removing delivered notices"):
            self._db.executemany("DELETE FROM notices WHERE id = ?", [(i,) for i in ids])

    def attempted(self, ids: Sequence[int], error: str) -> None:
        with self._lock, _writing("counting an attempt"):
            self._db.executemany(
                "UPDATE notices SET attempts = attempts + 1, error = ? WHERE id = ?",
                [(error, i) for i in ids],
            )

    def give_up(self, ids: Sequence[int], error: str, now_ms: int) -> None:
        """Kept, with why, for an operator to see; no longer sent."""
        with self._lock, _writing("marking notices given up"):
            self._db.executemany(
                "UPDATE notices SET attempts = attempts + 1, error = ?, failed_ms = ? WHERE id = ?",
                [(error, now_ms, i) for i in ids],
            )

    def prune(self, given_up_before_ms: int, channels: Sequence[str], orphan_before_ms: int) -> int:
        """Forget notices given up before `given_up_before_ms`, and those of a channel no
        longer configured (not in `channels`) written before `orphan_before_ms`; how many."""
        marks = ",".join("?" * len(channels))
        with self._lock, _writing("pruning old notices"):
            cur = self._db.execute(
                "DELETE FROM notices WHERE (failed_ms IS NOT NULL AND failed_ms < ?) "  # noqa: S608 - only ?s
                f"OR (channel NOT IN ({marks}) AND created_ms < ?)",
                (given_up_before_ms, *channels, orphan_before_ms),
            )
        return int(cur.rowcount)

    def notice_counts(self) -> dict[str, tuple[int, int]]:
        """Per channel: (waiting, given up)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT channel, SUM(failed_ms IS NULL), SUM(failed_ms IS NOT NULL) "
                "FROM notices GROUP BY channel"
            ).fetchall()
        return {channel: (int(waiting), int(failed)) for channel, waiting, failed in rows}

    def add_silence(self, station: str, start_ms: int, end_ms: int, reason: str) -> int:
        if end_ms <= start_ms:
            raise ValueError("a silence must end after it starts")
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO silences (station, start_ms, end_ms, reason) VALUES (?,?,?,?)",
                (station, start_ms, end_ms, reason),
            )
        return int(cur.lastrowid or 0)

    def remove_silence(self, silence_id: int) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM silences WHERE id = ?", (silence_id,))
        return cur.rowcount > 0

    def silences(self, now_ms: int | None = None) -> list[Silence]:
        """All silences not yet over (at `now_ms`), or every one."""
        query = "SELECT * FROM silences"
        args: tuple[int, ...] = ()
        if now_ms is not None:
            query += " WHERE end_ms > ?"
            args = (now_ms,)
        with self._lock:
            return [Silence(*row) for row in self._db.execute(query + " ORDER BY id", args)]

    def silenced_stations(self, now_ms: int) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT station FROM silences WHERE start_ms <= ? AND end_ms > ?", (now_ms, now_ms)
            )
            return {station for (station,) in rows}
