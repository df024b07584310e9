"""A full disk under the edge outbox: the oldest readings go, the newest stay, it recovers.

Once, each new reading on a full disk was lost with two tracebacks, acked
rows could not be deleted, and a failed commit left SQLite's transaction
open, so the agent never recovered even when space came back. Two real
"disk full"s: SQLite's own page limit (`max_page_count`), and, where the
test runs as root, a small tmpfs filled up with less room than SQLite's
default 4 MB write-ahead log needs.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest

import edge.diskfull
from app.localservers import MosquittoServer
from edge.agent import EdgeAgent
from edge.config import AgentConfig, DeviceConfig, OutboxConfig
from edge.outbox import Outbox
from tests.helpers import MqttSpy, fill_disk, readings_by_device, wait_for
from tests.test_edge_agent import seqs_in_order
from waystation.contract import Kind
from waystation.settings import MqttSettings

PAGES = 60  # 240 KB: room for about 2,000 readings


def _door(i: int) -> dict[str, int]:
    return {"in_total": i, "out_total": i}


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def _put(ob: Outbox, start_ms: int, n: int) -> list[int]:
    """`n` readings, 20 to a transaction (quicker than one by one; the same otherwise)."""
    out: list[int] = []
    for first in range(0, n, 20):
        batch = range(first, min(first + 20, n))
        out += ob.put_many(("d", "door_counter", start_ms + i, _door(i)) for i in batch)
    return out


def _seqs(ob: Outbox) -> list[int]:
    return [json.loads(r.payload)["seq"] for r in ob.after(0, 10**6)]


def test_a_full_database_drops_the_oldest_keeps_the_newest_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge.diskfull, "PROBE_EVERY_S", 0.2)
    now = int(time.time() * 1000)
    with (
        caplog.at_level(logging.WARNING),
        Outbox(tmp_path / "o.db", max_readings=10**6, max_age=timedelta(days=1)) as ob,
    ):
        ob._db.execute(f"PRAGMA max_page_count={PAGES}")  # the disk is this big
        seqs = _put(ob, now, 6000)
        assert ob.disk_full
        kept = _seqs(ob)
        # The newest are all there, in one run up to the last; the oldest went first.
        assert kept == seqs[-len(kept) :]
        assert 1000 < len(kept) < 3000
        assert ob.dropped_total == len(seqs) - len(kept)
        assert len(_messages(caplog, "the disk is full")) == 1  # said once
        assert not ob._db.in_transaction

        # Acknowledged readings are still deleted on the full disk, making room.
        rows = ob.after(0, 1000)
        assert ob.delete(r.id for r in rows) == 1000
        dropped = ob.dropped_total
        more = _put(ob, now + 10_000, 300)
        assert ob.dropped_total == dropped  # fitted in the freed room
        assert _seqs(ob)[-300:] == more

        ob._db.execute("PRAGMA max_page_count=1000000")  # space returns
        n = 0
        while ob.disk_full and n < 100_000:  # until the outbox tries, and grows
            _put(ob, now + 20_000 + n, 20)
            n += 20
        assert not ob.disk_full
        dropped = ob.dropped_total
        last = _put(ob, now + 200_000, 3000)
        assert ob.dropped_total == dropped
        assert _seqs(ob)[-3000:] == last
        assert len(_messages(caplog, "has room again")) == 1
        assert len(_messages(caplog, "the disk is full")) == 1
    # The count survives a restart with the readings.
    with Outbox(tmp_path / "o.db", max_readings=10**6, max_age=timedelta(days=1)) as again:
        assert again.dropped_total == dropped


@pytest.mark.integration
def test_an_agent_on_a_full_disk_keeps_the_newest_and_recovers(
    small_disk: Path,
    tmp_path: Path,
    uid: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(edge.diskfull, "PROBE_EVERY_S", 1.0)
    broker = MosquittoServer(tmp_path / "mosquitto")
    station = f"df-{uid}"
    door = f"{station}-door"
    config = AgentConfig(
        station=station,
        agent_device=f"{station}-gw",
        gateway_interval=timedelta(seconds=0.5),
        outbox=OutboxConfig(path=small_disk / "outbox.db"),
        devices={door: DeviceConfig(kind=Kind.DOOR_COUNTER, interval=timedelta(seconds=0.002))},
    )
    telemetry = [f"stations/{station}/+/telemetry"]
    # The spy's session is on the broker before the agent ever reaches it: the agent may
    # reconnect the moment the broker is back, before a new subscriber would be there.
    broker.start()
    with MqttSpy(MqttSettings.from_url(broker.url), f"spy-{uid}", telemetry, persistent=True):
        pass
    broker.stop()  # down until the disk has room again
    agent = EdgeAgent(config, MqttSettings.from_url(broker.url))
    with caplog.at_level(logging.WARNING):
        agent.start()
        try:
            wait_for(lambda: agent.outbox.depth > 1000, "readings in the outbox")
            # Something else fills the disk, leaving less than SQLite's default 4 MB log needs.
            fill_disk(small_disk / "filler", leave=256 * 1024)
            wait_for(lambda: agent.outbox.dropped_total > 1000, "the disk to fill", 120)
            readings = agent.stats.readings
            wait_for(lambda: agent.stats.readings > readings + 500, "readings still taken")
            assert agent.outbox.disk_full
            # The newest reading of the device is in the outbox. Space returns right after it
            # is taken: on a loaded machine a slow check would let later readings push it out.
            newest = agent.outbox.last_seq(door)
            (small_disk / "filler").unlink()  # space returns
            wait_for(lambda: newest in _seqs(agent.outbox), "the newest reading kept")
            wait_for(lambda: not agent.outbox.disk_full, "the outbox to notice", 60)
            dropped = agent.outbox.dropped_total
            depth = agent.outbox.depth
            wait_for(lambda: agent.outbox.depth > depth + 1000, "the outbox to grow again", 60)
            assert agent.outbox.dropped_total == dropped

            first_kept = _seqs(agent.outbox)[0]  # nothing leaves it while the broker is down
            broker.start()
            settings = MqttSettings.from_url(broker.url)
            with MqttSpy(settings, f"spy-{uid}", telemetry, persistent=True) as spy:
                wait_for(lambda: agent.outbox.depth < 500, "the replay", 120)

                def arrived() -> list[int]:
                    return seqs_in_order(readings_by_device(spy.messages).get(door, []))

                wait_for(lambda: newest in arrived(), "the newest reading from the full disk")
                got = [s for s in arrived() if s >= first_kept]
                # Everything kept went out, without a gap, from the oldest kept on.
                assert got == list(range(first_kept, got[-1] + 1))
                wait_for(
                    lambda: any(
                        int(r["data"]["outbox_dropped_total"]) >= dropped  # type: ignore[index]
                        for r in readings_by_device(spy.messages).get(f"{station}-gw", [])
                    ),
                    "a gateway reading that reports the drops",
                )
        finally:
            agent.stop(drain_s=0)
            broker.stop()
    assert len(_messages(caplog, "the disk is full")) == 1
    assert len(_messages(caplog, "has room again")) == 1
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
