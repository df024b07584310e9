"""The writer's inbox: batches close on size, on time, and on a pause in the stream."""

from __future__ import annotations

import threading
import time

from ingest.inbox import Inbox


def test_takes_up_to_the_size_in_order() -> None:
    inbox: Inbox[int] = Inbox()
    for i in range(10):
        inbox.put(i)
    assert inbox.take(4, max_wait_s=1, gap_s=1) == [0, 1, 2, 3]
    assert inbox.take(100, max_wait_s=0.05, gap_s=1) == [4, 5, 6, 7, 8, 9]
    assert len(inbox) == 0


def test_empty_inbox_returns_nothing_after_the_idle_wait() -> None:
    inbox: Inbox[int] = Inbox()
    t0 = time.monotonic()
    assert inbox.take(10, max_wait_s=1, gap_s=1, idle_wait_s=0.05) == []
    assert time.monotonic() - t0 < 0.5


def test_a_pause_closes_the_batch_before_the_deadline() -> None:
    inbox: Inbox[int] = Inbox()
    inbox.put(1)
    t0 = time.monotonic()
    assert inbox.take(100, max_wait_s=5, gap_s=0.02) == [1]
    assert time.monotonic() - t0 < 1  # closed by the 20 ms pause, not the 5 s deadline


def test_items_from_another_thread_join_the_open_batch() -> None:
    inbox: Inbox[int] = Inbox()
    done = threading.Event()

    def produce() -> None:
        for i in range(200):
            inbox.put(i)
        done.set()

    inbox.put(-1)
    threading.Thread(target=produce).start()
    batch = inbox.take(1000, max_wait_s=2, gap_s=0.5)
    assert done.wait(5)
    batch += inbox.take(1000, max_wait_s=0.1, gap_s=0.1)
    assert batch == [-1, *range(200)]  # nothing lost, nothing reordered
