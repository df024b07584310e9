"""The edge outbox: order, seq, bounds, and durability through kill -9."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

from edge.outbox import Outbox

TS = 1_761_955_200_000
NOW_S = TS / 1000


def outbox(path: Path, max_readings: int = 1000, max_age: timedelta = timedelta(days=30)) -> Outbox:
    return Outbox(path, max_readings=max_readings, max_age=max_age, clock=lambda: NOW_S)


def door(i: int) -> dict[str, int]:
    return {"in_total": i, "out_total": i}


def test_readings_come_out_in_order_with_increasing_seq(tmp_path: Path) -> None:
    with outbox(tmp_path / "o.db") as ob:
        seqs = [ob.put("d1", "door_counter", TS + i, door(i)) for i in range(5)]
        assert seqs == list(range(seqs[0], seqs[0] + 5))
        assert seqs[0] == int(NOW_S * 1000)  # a new device starts at the clock in ms
        rows = ob.after(0, 10)
        assert [json.loads(r.payload)["seq"] for r in rows] == seqs
        assert json.loads(rows[0].payload) == {
            "v": 1, "kind": "door_counter", "ts": TS, "seq": seqs[0], "data": door(0)
        }  # fmt: skip
        assert ob.after(rows[2].id, 10) == rows[3:]
        assert ob.delete([rows[0].id, rows[1].id]) == 2
        assert ob.depth == 3


def test_seq_and_contents_survive_reopening(tmp_path: Path) -> None:
    with outbox(tmp_path / "o.db") as ob:
        first = ob.put("d1", "door_counter", TS, door(1))
        ob.put("d1", "door_counter", TS + 1, door(2))
    with outbox(tmp_path / "o.db") as ob:
        assert ob.depth == 2
        assert ob.put("d1", "door_counter", TS + 2, door(3)) == first + 2


def test_full_outbox_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    with outbox(tmp_path / "o.db", max_readings=100) as ob:
        seqs = [ob.put("d1", "door_counter", TS + i, door(i)) for i in range(150)]
        assert ob.depth == 100
        assert ob.dropped_total == 50
        kept = [json.loads(r.payload)["seq"] for r in ob.after(0, 1000)]
        assert kept == seqs[50:]  # the newest are kept
    with outbox(tmp_path / "o.db", max_readings=100) as ob:
        assert ob.dropped_total == 50  # the count survives a restart


def test_readings_past_the_age_bound_expire_and_count(tmp_path: Path) -> None:
    with outbox(tmp_path / "o.db", max_age=timedelta(hours=1)) as ob:
        ob.put("d1", "door_counter", TS - 2 * 3600 * 1000, door(1))  # two hours old
        ob.put("d1", "door_counter", TS - 60 * 1000, door(2))  # a minute old
        assert ob.expire() == 1
        assert ob.depth == 1
        assert ob.dropped_total == 1


def test_put_many_is_one_transaction_with_consecutive_seqs(tmp_path: Path) -> None:
    with outbox(tmp_path / "o.db") as ob:
        seqs = ob.put_many([("d1", "door_counter", TS + i, door(i)) for i in range(1000)])
        assert seqs == list(range(seqs[0], seqs[0] + 1000))
        assert ob.depth == 1000


def test_a_committed_reading_survives_kill9(tmp_path: Path) -> None:
    """A child writes readings and says each seq once `put` returned; we kill -9 it mid-stream."""
    path = tmp_path / "o.db"
    script = textwrap.dedent(f"""
        import sys
        from datetime import timedelta
        from pathlib import Path
        from edge.outbox import Outbox
        ob = Outbox(Path({str(path)!r}), max_readings=10**6, max_age=timedelta(days=30))
        i = 0
        while True:
            seq = ob.put("d1", "door_counter", {TS} + i, {{"in_total": i, "out_total": i}})
            print(seq, flush=True)
            i += 1
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    confirmed: list[int] = []
    deadline = time.monotonic() + 30
    while len(confirmed) < 200 and time.monotonic() < deadline:
        confirmed.append(int(child.stdout.readline()))
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert len(confirmed) == 200

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Outbox(path, max_readings=10**6, max_age=timedelta(days=30)) as ob:
        stored = [json.loads(r.payload)["seq"] for r in ob.after(0, 10**6)]
        assert set(confirmed) <= set(stored)  # every confirmed reading is there
        assert stored == sorted(stored)
        assert ob.put("d1", "door_counter", TS, door(0)) == stored[-1] + 1
